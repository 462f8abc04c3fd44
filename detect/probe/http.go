package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// maxHTTPBody bounds how much of a response body an http probe reads.
const maxHTTPBody = 1 << 20

// httpConfig is the params of http.
type httpConfig struct {
	// Method is the request method (default GET).
	Method string `json:"method"`
	// Path is appended to the target's URL, e.g. /api/health/readiness.
	Path string `json:"path"`
	// ExpectStatus lists the acceptable status codes (default: any 2xx).
	ExpectStatus []int `json:"expect_status"`
	// BodyRegexp must match the response body (its first MiB) when set.
	BodyRegexp string `json:"body_regexp"`
	// Headers are added to the request.
	Headers map[string]string `json:"headers"`
	// MaxLatency fails a response slower than this (default: only the
	// probe's timeout applies).
	MaxLatency Duration `json:"max_latency"`
	// NoFollowRedirects reports a redirect's own status instead of
	// following it.
	NoFollowRedirects bool `json:"no_follow_redirects"`

	bodyRE *regexp.Regexp
}

func httpSettings(p config.Probe) (httpConfig, error) {
	var c httpConfig
	if err := decodeParams(p, &c); err != nil {
		return c, err
	}
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	c.Method = strings.ToUpper(c.Method)
	for _, code := range c.ExpectStatus {
		if code < 100 || code > 599 {
			return c, fmt.Errorf("params: expect_status: %d is not an HTTP status code", code)
		}
	}
	if c.BodyRegexp != "" {
		re, err := regexp.Compile(c.BodyRegexp)
		if err != nil {
			return c, fmt.Errorf("params: body_regexp: %v", err)
		}
		c.bodyRE = re
	}
	return c, nil
}

func validateHTTP(p config.Probe, c *config.Config) error {
	t, terr := httpTarget(c, p.Target)
	if terr == nil {
		if _, err := targetURL(t, ""); err != nil {
			terr = err
		}
	}
	_, perr := httpSettings(p)
	return errors.Join(terr, perr)
}

// targetURL joins the target's URL and a path.
func targetURL(t config.HTTPTarget, path string) (string, error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("http target %q: url must be an absolute http(s) URL", t.Name)
	}
	if path != "" {
		u = u.JoinPath(path)
	}
	return u.String(), nil
}

// HTTP requests the target's URL (plus path) and checks the status code,
// the latency and optionally the body.
func HTTP(ctx context.Context, env Env, p config.Probe) detect.Result {
	c, err := httpSettings(p)
	if err != nil {
		return fail("%v", err)
	}
	t, err := httpTarget(env.Config, p.Target)
	if err != nil {
		return fail("%v", err)
	}
	u, err := targetURL(t, c.Path)
	if err != nil {
		return fail("%v", err)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, u, nil)
	if err != nil {
		return fail("build request: %v", err)
	}
	req.Header.Set("User-Agent", "drguard-probe")
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	client := env.httpClient()
	if c.NoFollowRedirects {
		nc := *client
		nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		client = &nc
	}
	r := newResult()
	start := env.now()
	resp, err := client.Do(req)
	if err != nil {
		r.failf("%s %s failed: %s", c.Method, redactURL(u), unwrapURLError(err))
		return r.done()
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
	latency := env.now().Sub(start)
	r.observe("status_code", float64(resp.StatusCode))
	r.observe("latency_seconds", latency.Seconds())
	r.observe("body_bytes", float64(len(body)))
	if !statusOK(resp.StatusCode, c.ExpectStatus) {
		want := "2xx"
		if len(c.ExpectStatus) > 0 {
			want = fmt.Sprint(c.ExpectStatus)
		}
		r.failf("status %d, want %s", resp.StatusCode, want)
	}
	if c.MaxLatency > 0 && latency > c.MaxLatency.D() {
		r.failf("latency %s over max_latency %s", latency.Round(1e6), c.MaxLatency)
	}
	if c.bodyRE != nil {
		switch {
		case rerr != nil:
			r.failf("reading body: %v", unwrapURLError(rerr))
		case !c.bodyRE.Match(body):
			r.observe("body_match", 0)
			r.failf("body does not match %q", c.BodyRegexp)
		default:
			r.observe("body_match", 1)
		}
	}
	return r.done()
}

// statusOK reports whether code is acceptable.
func statusOK(code int, expect []int) bool {
	if len(expect) == 0 {
		return code >= 200 && code < 300
	}
	for _, c := range expect {
		if c == code {
			return true
		}
	}
	return false
}

// redactURL drops user info from a URL before it goes into a reason.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User("<secret>")
	}
	return u.String()
}

// unwrapURLError returns the cause of a *url.Error, whose message would
// repeat the URL (with any credentials in it).
func unwrapURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) {
			return "timed out"
		}
		return ue.Err.Error()
	}
	return err.Error()
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// maxHTTPBody bounds how much of a response body an http probe reads.
const maxHTTPBody = 1 << 20

// httpParams is the params of http.
type httpParams struct {
	// Method is the request method (default GET).
	Method string `param:"method"`
	// Path is appended to the target's URL, e.g. /api/health/readiness.
	Path string `param:"path"`
	// ExpectStatus lists the acceptable status codes (default: any 2xx).
	ExpectStatus []int `param:"expect_status"`
	// BodyRegexp must match the response body (its first MiB) when set;
	// it is compiled once, when the configuration loads.
	BodyRegexp params.Regexp `param:"body_regexp"`
	// Headers are added to the request.
	Headers map[string]string `param:"headers"`
	// MaxLatency fails a response slower than this (default: only the
	// probe's timeout applies).
	MaxLatency model.Duration `param:"max_latency"`
	// NoFollowRedirects reports a redirect's own status instead of
	// following it.
	NoFollowRedirects bool `param:"no_follow_redirects"`
}

func (c *httpParams) defaults() { c.Method = http.MethodGet }

func (c *httpParams) check() error {
	c.Method = strings.ToUpper(c.Method)
	for i, code := range c.ExpectStatus {
		if code < 100 || code > 599 {
			return params.Errorf(params.Index("expect_status", i), "%d is not an HTTP status code", code)
		}
	}
	return nil
}

// compileHTTP builds the request's URL once and returns the runner.
func compileHTTP(p config.Probe, cfg *config.Config) (Runner, error) {
	var c httpParams
	perr := decode(p, &c)
	t, terr := httpTarget(cfg, p.Target)
	var u *url.URL
	if terr == nil {
		u, terr = targetURL(t, c.Path)
	}
	if err := errors.Join(terr, perr); err != nil {
		return nil, err
	}
	rawURL, shown := u.String(), u.Redacted()
	return func(ctx context.Context, env Env) detect.Result {
		return runHTTP(ctx, env, &c, rawURL, shown)
	}, nil
}

// targetURL joins the target's URL and a path.
func targetURL(t config.HTTPTarget, path string) (*url.URL, error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("http target %q: url must be an absolute http(s) URL", t.Name)
	}
	if path != "" {
		u = u.JoinPath(path)
	}
	return u, nil
}

// runHTTP requests the target's URL (plus path) and checks the status
// code, the latency and optionally the body.
func runHTTP(ctx context.Context, env Env, c *httpParams, rawURL, shown string) detect.Result {
	req, err := http.NewRequestWithContext(ctx, c.Method, rawURL, nil)
	if err != nil {
		return fail("build request: %v", err)
	}
	req.Header.Set("User-Agent", "drguard-probe")
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	client := env.httpClient()
	if c.NoFollowRedirects {
		client = env.httpClientNoRedirects()
	}
	r := newResult()
	start := env.now()
	resp, err := client.Do(req)
	if err != nil {
		r.failf("%s %s failed: %s", c.Method, shown, unwrapURLError(err))
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
	if c.MaxLatency > 0 && latency > time.Duration(c.MaxLatency) {
		r.failf("latency %s over max_latency %s", latency.Round(1e6), c.MaxLatency)
	}
	if re := c.BodyRegexp.Regexp; re != nil {
		switch {
		case rerr != nil:
			r.failf("reading body: %v", unwrapURLError(rerr))
		case !re.Match(body):
			r.observe("body_match", 0)
			r.failf("body does not match %q", re.String())
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

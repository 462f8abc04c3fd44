package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// DefaultMaxResponseBytes caps the response body an http step captures.
const DefaultMaxResponseBytes = 16 << 10

// HTTP calls a URL. Header values from header_files are read through the
// configuration (Config.ReadSecret) when the step runs and never reach the
// journal, logs or errors; they, Authorization and Cookie are dropped when
// a redirect leads to another origin (scheme, host and port).
type HTTP struct {
	client *http.Client
	logger *slog.Logger
	cfg    *config.Config
}

// httpInfo declares http neither destructive nor idempotent; a step may
// override both.
var httpInfo = Info{}

// httpParams is the params of http.
type httpParams struct {
	// Method is the request method (default POST).
	Method string `param:"method"`
	// URL is the http(s) URL to call; required.
	URL string `param:"url"`
	// Headers are plain header values (journaled with the params).
	Headers map[string]string `param:"headers"`
	// HeaderFiles maps a header name to a file holding its (secret)
	// value; a relative path is relative to the configuration file.
	HeaderFiles map[string]config.SecretRef `param:"header_files"`
	// Body is sent as the request body (Content-Type application/json
	// unless a header says otherwise).
	Body string `param:"body"`
	// ExpectStatus lists the acceptable status codes (default any 2xx).
	ExpectStatus []int `param:"expect_status"`
	// MaxResponseBytes caps the captured response (default 16 KiB).
	MaxResponseBytes int `param:"max_response_bytes"`
	// AllowedHosts, when set, lists the hosts (host, or host:port) the
	// rendered url, and any redirect, may reach; check requires it when
	// the url's scheme, host or port is a template.
	AllowedHosts []string `param:"allowed_hosts"`
}

func (p *httpParams) defaults() {
	p.Method, p.MaxResponseBytes = http.MethodPost, DefaultMaxResponseBytes
}

func (p *httpParams) check(t params.Templates) error {
	p.Method = strings.ToUpper(strings.TrimSpace(p.Method))
	if p.URL == "" {
		return params.Required("url", "")
	}
	if t.Literal("url") {
		u, err := url.Parse(p.URL)
		if err != nil {
			return params.Errorf("url", "not a URL")
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return params.Errorf("url", "scheme must be http or https, got %q", u.Scheme)
		}
	}
	for i, c := range p.ExpectStatus {
		if t.Literal(params.Index("expect_status", i)) && (c < 100 || c > 599) {
			return params.Errorf(params.Index("expect_status", i), "%d is not an HTTP status", c)
		}
	}
	if p.MaxResponseBytes <= 0 && t.Literal("max_response_bytes") {
		return params.Errorf("max_response_bytes", "must be positive, got %d", p.MaxResponseBytes)
	}
	for i, h := range p.AllowedHosts {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, "/@?#") {
			return params.Errorf(params.Index("allowed_hosts", i), "want a host or host:port, got %q", h)
		}
	}
	return nil
}

// allow checks a URL the step is about to reach against allowed_hosts;
// without the list, any URL passes.
func (p *httpParams) allow(u *url.URL) error {
	if len(p.AllowedHosts) == 0 {
		return nil
	}
	return allowedHost(u, p.AllowedHosts)
}

// newHTTP builds the http action. It uses Deps.HTTPClient when set, and
// otherwise a client whose connection phases all have timeouts; the step's
// context bounds the whole exchange.
func newHTTP(d Deps) (RunFunc[httpParams], error) {
	c := d.HTTPClient
	if c == nil {
		c = &http.Client{
			Timeout: 5 * time.Minute,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: 60 * time.Second,
				IdleConnTimeout:       90 * time.Second,
				MaxIdleConns:          16,
			},
		}
	}
	return (&HTTP{client: c, logger: d.Logger, cfg: d.Config}).run, nil
}

// run sends the request and checks the status.
func (h *HTTP) run(ctx context.Context, req Request, spec *httpParams) (Outcome, error) {
	hreq, shown, err := spec.request(ctx, req.RunID, h.cfg)
	if err != nil {
		return Outcome{}, err
	}
	if err := spec.allow(hreq.URL); err != nil {
		return Outcome{}, fmt.Errorf("%s %s: not sent: %w", spec.Method, shown, err)
	}
	secret := make([]string, 0, len(spec.HeaderFiles))
	for k := range spec.HeaderFiles {
		secret = append(secret, k)
	}
	start := time.Now()
	resp, err := guardedClient(h.client, secret, spec.allow).Do(hreq)
	if err != nil {
		return Outcome{}, fmt.Errorf("%s %s: %w", spec.Method, shown, transportError(err))
	}
	defer resp.Body.Close()
	capped := &cappedBuffer{max: spec.MaxResponseBytes}
	_, readErr := io.Copy(capped, io.LimitReader(resp.Body, int64(spec.MaxResponseBytes)+1<<20))
	elapsed := time.Since(start)
	out := Outcome{
		Output: fmt.Sprintf("%s %s → %s\n%s", spec.Method, shown, resp.Status, capped.String()),
		Result: map[string]any{"status": resp.StatusCode, "duration_seconds": elapsed.Seconds()},
	}
	h.logger.Debug("http step finished", "run", req.RunID, "step", req.Step, "url", shown, "status", resp.StatusCode, "after", elapsed)
	if !statusExpected(resp.StatusCode, spec.ExpectStatus) {
		return out, fmt.Errorf("%s %s: unexpected status %s (expected %s)%s", spec.Method, shown, resp.Status, expectText(spec.ExpectStatus), tailFor(capped.String()))
	}
	if readErr != nil {
		return out, fmt.Errorf("%s %s: read response: %w", spec.Method, shown, transportError(readErr))
	}
	return out, nil
}

// request builds the request, reading the header files now through cfg,
// and returns it with the URL as it may be shown (url.URL.Redacted: no
// password).
func (spec *httpParams) request(ctx context.Context, runID string, cfg *config.Config) (*http.Request, string, error) {
	u, err := url.Parse(spec.URL)
	if err != nil {
		return nil, "", params.Errorf("url", "not a URL")
	}
	shown := u.Redacted()
	var body io.Reader
	if spec.Body != "" {
		body = strings.NewReader(spec.Body)
	}
	hreq, err := http.NewRequestWithContext(ctx, spec.Method, spec.URL, body)
	if err != nil {
		return nil, "", fmt.Errorf("build request to %s: invalid method or URL", shown)
	}
	for k, v := range spec.Headers {
		hreq.Header.Set(k, v)
	}
	for k, ref := range spec.HeaderFiles {
		v, err := cfg.ReadSecret(ref)
		if err != nil {
			return nil, "", fmt.Errorf("header %s: %w", k, err)
		}
		hreq.Header.Set(k, strings.TrimSpace(v.Reveal()))
	}
	if spec.Body != "" && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("User-Agent", "drguard")
	hreq.Header.Set("X-Drguard-Run-Id", runID)
	return hreq, shown, nil
}

// transportError describes a client error without repeating the URL,
// which may carry credentials. A deadline is ErrTimedOut.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimedOut
	}
	return errors.New(err.Error())
}

func statusExpected(code int, expect []int) bool {
	if len(expect) == 0 {
		return code >= 200 && code <= 299
	}
	for _, c := range expect {
		if c == code {
			return true
		}
	}
	return false
}

func expectText(expect []int) string {
	if len(expect) == 0 {
		return "2xx"
	}
	parts := make([]string, len(expect))
	for i, c := range expect {
		parts[i] = fmt.Sprint(c)
	}
	return strings.Join(parts, " or ")
}

// preflightHTTP checks that the header files can be read and that the
// URL's host accepts a connection. The request itself is not sent: an
// http step may change things.
func preflightHTTP(d Deps) PreflightFunc[httpParams] {
	return func(ctx context.Context, req Request, spec *httpParams) Preflight {
		var pf Preflight
		u, err := url.Parse(spec.URL)
		if err != nil {
			pf.fail("params", req.Step, "url: not a URL")
			return pf
		}
		shown := u.Redacted()
		if err := spec.allow(u); err != nil {
			pf.fail("allowed_hosts", shown, "%v", err)
			return pf
		}
		for k, ref := range spec.HeaderFiles {
			if _, err := d.Config.ReadSecret(ref); err != nil {
				pf.fail("header_file", k, "%v", err)
			}
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
		if err != nil {
			pf.fail("connect", shown, "cannot connect to %s: %s", u.Host, transportError(err))
			return pf
		}
		_ = conn.Close()
		pf.pass("connect", shown, "%s accepts connections; the %s request is not sent (an http step may change things)", u.Host, spec.Method)
		return pf
	}
}

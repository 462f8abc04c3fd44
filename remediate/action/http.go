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
	"os"
	"strings"
	"time"
)

// DefaultMaxResponseBytes caps the response body an http step captures.
const DefaultMaxResponseBytes = 16 << 10

// maxHeaderFileBytes bounds a header value read from a file.
const maxHeaderFileBytes = 64 << 10

// HTTP calls a URL. Header values from header_files are read when the step
// runs and never reach the journal, logs or errors.
//
// Params: method (default POST), url (required), headers (map of plain
// values), header_files (map of header name to file path), body (string),
// expect_status (list of codes, default any 2xx), max_response_bytes (int,
// default 16 KiB).
type HTTP struct {
	client *http.Client
	logger *slog.Logger
}

var _ Action = (*HTTP)(nil)

// NewHTTP builds the http action. It uses Deps.HTTPClient when set, and
// otherwise a client whose connection phases all have timeouts; the step's
// context bounds the whole exchange.
func NewHTTP(d Deps) (Action, error) {
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
	return &HTTP{client: c, logger: d.withDefaults().Logger}, nil
}

// Info declares http neither destructive nor idempotent; a step may
// override both.
func (*HTTP) Info() Info { return Info{} }

type httpSpec struct {
	method      string
	url         string
	headers     map[string]string
	headerFiles map[string]string
	body        string
	expect      []int
	maxResponse int
}

// Validate checks the unrendered params.
func (*HTTP) Validate(params map[string]any) error {
	if err := checkKnown(params, "method", "url", "headers", "header_files", "body", "expect_status", "max_response_bytes"); err != nil {
		return err
	}
	_, err := httpParams(params, true)
	return err
}

func httpParams(params map[string]any, unrendered bool) (httpSpec, error) {
	var s httpSpec
	var err error
	if s.method, err = stringParam(params, "method", http.MethodPost); err != nil {
		return s, err
	}
	s.method = strings.ToUpper(strings.TrimSpace(s.method))
	if s.url, err = stringParam(params, "url", ""); err != nil {
		return s, err
	}
	if s.url == "" {
		return s, errors.New(`param "url" is required`)
	}
	if !unrendered || !isTemplate(s.url) {
		u, err := url.Parse(s.url)
		if err != nil {
			return s, fmt.Errorf(`param "url": not a URL`)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return s, fmt.Errorf(`param "url": scheme must be http or https, got %q`, u.Scheme)
		}
	}
	if s.headers, err = stringMapParam(params, "headers"); err != nil {
		return s, err
	}
	if s.headerFiles, err = stringMapParam(params, "header_files"); err != nil {
		return s, err
	}
	if s.body, err = stringParam(params, "body", ""); err != nil {
		return s, err
	}
	if s.expect, err = intListParam(params, "expect_status", unrendered); err != nil {
		return s, err
	}
	for _, c := range s.expect {
		if c < 100 || c > 599 {
			return s, fmt.Errorf(`param "expect_status": %d is not an HTTP status`, c)
		}
	}
	if s.maxResponse, err = intParam(params, "max_response_bytes", DefaultMaxResponseBytes, unrendered); err != nil {
		return s, err
	}
	if s.maxResponse <= 0 {
		return s, fmt.Errorf(`param "max_response_bytes" must be positive, got %d`, s.maxResponse)
	}
	return s, nil
}

// Run sends the request and checks the status.
func (h *HTTP) Run(ctx context.Context, req Request) (Outcome, error) {
	spec, err := httpParams(req.Params, false)
	if err != nil {
		return Outcome{}, err
	}
	u, _ := url.Parse(spec.url)
	shown := u.Redacted()
	var body io.Reader
	if spec.body != "" {
		body = strings.NewReader(spec.body)
	}
	hreq, err := http.NewRequestWithContext(ctx, spec.method, spec.url, body)
	if err != nil {
		return Outcome{}, fmt.Errorf("build request to %s: invalid method or URL", shown)
	}
	for k, v := range spec.headers {
		hreq.Header.Set(k, v)
	}
	for k, path := range spec.headerFiles {
		v, err := readHeaderFile(path)
		if err != nil {
			return Outcome{}, fmt.Errorf("header %s: %w", k, err)
		}
		hreq.Header.Set(k, v)
	}
	if spec.body != "" && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("User-Agent", "drguard")
	hreq.Header.Set("X-Drguard-Run-Id", req.RunID)

	start := time.Now()
	resp, err := h.client.Do(hreq)
	if err != nil {
		return Outcome{}, fmt.Errorf("%s %s: %s", spec.method, shown, transportError(err))
	}
	defer resp.Body.Close()
	capped := &cappedBuffer{max: spec.maxResponse}
	_, readErr := io.Copy(capped, io.LimitReader(resp.Body, int64(spec.maxResponse)+1<<20))
	elapsed := time.Since(start)
	out := Outcome{
		Output: fmt.Sprintf("%s %s → %s\n%s", spec.method, shown, resp.Status, capped.String()),
		Result: map[string]any{"status": resp.StatusCode, "duration_seconds": elapsed.Seconds()},
	}
	h.logger.Debug("http step finished", "run", req.RunID, "step", req.Step, "url", shown, "status", resp.StatusCode, "after", elapsed)
	if !statusExpected(resp.StatusCode, spec.expect) {
		return out, fmt.Errorf("%s %s: unexpected status %s (expected %s)%s", spec.method, shown, resp.Status, expectText(spec.expect), tailFor(capped.String()))
	}
	if readErr != nil {
		return out, fmt.Errorf("%s %s: read response: %s", spec.method, shown, transportError(readErr))
	}
	return out, nil
}

// readHeaderFile reads a secret header value; its content is never quoted
// in errors.
func readHeaderFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read header file %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxHeaderFileBytes))
	if err != nil {
		return "", fmt.Errorf("read header file %s: %w", path, errors.Unwrap(err))
	}
	v := strings.TrimSpace(string(raw))
	if v == "" {
		return "", fmt.Errorf("header file %s is empty", path)
	}
	return v, nil
}

// transportError describes a client error without repeating the URL,
// which may carry credentials.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
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

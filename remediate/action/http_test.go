package action

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
)

func newHTTPAction(t *testing.T) Action {
	t.Helper()
	a, err := Registry["http"].New(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestHTTPValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"minimal", map[string]any{"url": "https://hooks.example/x"}, ""},
		{"templated url", map[string]any{"url": "{{ .Annotations.runbook_url }}"}, ""},
		{"full", map[string]any{"method": "put", "url": "http://x/", "headers": map[string]any{"A": "b"},
			"header_files": map[string]any{"Authorization": "/run/secrets/t"}, "body": `{"a":1}`,
			"expect_status": []any{200, 202}, "max_response_bytes": 100}, ""},
		{"no url", map[string]any{"method": "GET"}, `param "url": is required`},
		{"bad scheme", map[string]any{"url": "file:///etc/passwd"}, "scheme must be http or https"},
		{"bad status", map[string]any{"url": "http://x/", "expect_status": []any{99}}, "not an HTTP status"},
		{"headers not map", map[string]any{"url": "http://x/", "headers": "A: b"}, `param "headers": want a mapping`},
		{"unknown", map[string]any{"url": "http://x/", "timeout": "5s"}, `param "timeout": unknown key`},
		{"empty header file", map[string]any{"url": "http://x/", "header_files": map[string]any{"A": " "}}, `param "header_files.A": want the path of a file`},
		{"header file not a path", map[string]any{"url": "http://x/", "header_files": map[string]any{"A": 3}}, `param "header_files.A": want the path of a file`},
	}
	a := newHTTPAction(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Validate(tc.params)
			if tc.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHTTPSendsRequestWithSecretHeaderFromFile(t *testing.T) {
	const secret = "s3cr3t-token-value"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("Bearer "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, strings.Repeat("y", 100))
	}))
	defer srv.Close()

	out, err := newHTTPAction(t).Run(context.Background(), Request{RunID: "run-1", Params: map[string]any{
		"url": srv.URL + "/hook", "headers": map[string]any{"X-Team": "dba"},
		"header_files": map[string]any{"Authorization": tokenFile},
		"body":         `{"target":"db-1"}`, "max_response_bytes": 10,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/hook" || got.Header.Get("Authorization") != "Bearer "+secret || got.Header.Get("X-Team") != "dba" {
		t.Errorf("request %s %s headers %v", got.Method, got.URL, got.Header)
	}
	if body != `{"target":"db-1"}` || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("body %q content-type %q", body, got.Header.Get("Content-Type"))
	}
	if !strings.Contains(out.Output, "202 Accepted") || !strings.Contains(out.Output, "yyyyyyyyyy…[truncated 90 bytes]") {
		t.Errorf("output %q", out.Output)
	}
	if strings.Contains(out.Output, secret) || out.Result["status"] != 202 {
		t.Errorf("outcome %+v", out)
	}
}

func TestHTTPErrorsNeverShowSecrets(t *testing.T) {
	const secret = "s3cr3t-token-value"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		http.Error(w, "upstream broke", http.StatusBadGateway)
	}))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://user:pa55word@", 1)

	tests := []struct {
		name    string
		url     string
		expect  []any
		timeout time.Duration
		want    string
	}{
		{"unexpected status", withCreds + "/x", nil, time.Second, "unexpected status 502 Bad Gateway (expected 2xx): upstream broke"},
		{"expected list", withCreds + "/x", []any{200, 201}, time.Second, "expected 200 or 201"},
		{"timeout", withCreds + "/slow", nil, 200 * time.Millisecond, "timed out"},
		{"refused", "http://user:pa55word@127.0.0.1:1/x", nil, time.Second, "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			params := map[string]any{"url": tc.url, "method": "GET", "header_files": map[string]any{"Authorization": tokenFile}}
			if tc.expect != nil {
				params["expect_status"] = tc.expect
			}
			_, err := newHTTPAction(t).Run(ctx, Request{Params: params})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "pa55word") {
				t.Fatalf("error leaks a secret: %v", err)
			}
			if timedOut := errors.Is(err, ErrTimedOut); timedOut != (tc.name == "timeout") {
				t.Fatalf("errors.Is(err, ErrTimedOut) = %v for %v", timedOut, err)
			}
		})
	}

	_, err := newHTTPAction(t).Run(context.Background(), Request{Params: map[string]any{
		"url": srv.URL, "header_files": map[string]any{"Authorization": "/nonexistent/token"},
	}})
	if err == nil || !strings.Contains(err.Error(), "header Authorization: file /nonexistent/token does not exist") {
		t.Errorf("missing header file: %v", err)
	}
}

// TestHTTPHeaderFileRelativeToConfig reads a relative header file from the
// configuration file's directory, anew at every run (a rotated token is
// used at once).
func TestHTTPHeaderFileRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	a, err := Registry["http"].New(Deps{Config: &config.Config{File: filepath.Join(dir, "drguard.yaml")}})
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]any{"url": srv.URL, "header_files": map[string]any{"Authorization": "secrets/hook"}}
	for _, token := range []string{"Bearer first", "Bearer rotated"} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", "hook"), []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Run(context.Background(), Request{Params: params}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != "Bearer first" || got[1] != "Bearer rotated" {
		t.Errorf("Authorization headers = %q", got)
	}
}

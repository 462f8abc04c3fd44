package action

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// recorder is a real HTTP server that counts the requests it gets and
// keeps their headers.
type recorder struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		if h != nil {
			h(w, req)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// TestHTTPAllowedHostsSendsNothingElsewhere: with allowed_hosts, a rendered
// url (a label chose it) on another port, or a redirect to one, fails the
// step before anything reaches that server; the allowed host is called.
func TestHTTPAllowedHostsSendsNothingElsewhere(t *testing.T) {
	elsewhere := newRecorder(t, nil)
	allowed := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, elsewhere.URL+"/stolen", http.StatusTemporaryRedirect)
		}
	})
	tests := []struct {
		name         string
		url          string
		allowedCalls int
		want         string // "" = succeeds
	}{
		{"allowed host", allowed.URL + "/x", 1, ""},
		{"label points elsewhere", elsewhere.URL + "/x", 0, "not sent: host " + hostOf(elsewhere.Server) + " is not allowed by allowed_hosts"},
		{"same host, other port", "http://127.0.0.1:1/x", 0, "not allowed by allowed_hosts"},
		{"redirect elsewhere", allowed.URL + "/redirect", 1, "redirect refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(allowed.requests())
			_, err := newHTTPAction(t).Run(context.Background(), Request{Params: map[string]any{
				"url": tc.url, "allowed_hosts": []any{hostOf(allowed.Server)},
			}})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Run = %v, want %q", err, tc.want)
			}
			if n := len(allowed.requests()) - before; n != tc.allowedCalls {
				t.Errorf("the allowed server got %d requests, want %d", n, tc.allowedCalls)
			}
			if n := len(elsewhere.requests()); n != 0 {
				t.Fatalf("the server the label chose got %d requests, want 0", n)
			}
		})
	}
}

// TestHTTPRedirectKeepsSecretsAtTheirOrigin: a redirect to another port
// (another origin) arrives without Authorization, Cookie or the header
// files' headers, but with the plain ones; a redirect on the same origin
// keeps them all.
func TestHTTPRedirectKeepsSecretsAtTheirOrigin(t *testing.T) {
	dir := t.TempDir()
	for name, v := range map[string]string{"auth": "Bearer secret-bearer", "key": "secret-api-key"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	other := newRecorder(t, nil)
	var first *recorder
	first = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cross":
			http.Redirect(w, r, other.URL+"/landed", http.StatusFound)
		case "/same":
			http.Redirect(w, r, first.URL+"/landed", http.StatusFound)
		}
	})
	params := func(path string) map[string]any {
		return map[string]any{"url": first.URL + path, "method": "GET",
			"headers":      map[string]any{"X-Team": "dba", "Cookie": "session=secret-cookie"},
			"header_files": map[string]any{"Authorization": filepath.Join(dir, "auth"), "X-Api-Key": filepath.Join(dir, "key")}}
	}
	if _, err := newHTTPAction(t).Run(context.Background(), Request{Params: params("/cross")}); err != nil {
		t.Fatal(err)
	}
	got := other.requests()
	if len(got) != 1 {
		t.Fatalf("the other origin got %d requests, want 1 (the redirect is followed)", len(got))
	}
	for _, h := range []string{"Authorization", "X-Api-Key", "Cookie"} {
		if v := got[0].Get(h); v != "" {
			t.Errorf("the other origin got %s: %q", h, v)
		}
	}
	if got[0].Get("X-Team") != "dba" {
		t.Errorf("plain header X-Team lost: %v", got[0])
	}

	if _, err := newHTTPAction(t).Run(context.Background(), Request{Params: params("/same")}); err != nil {
		t.Fatal(err)
	}
	all := first.requests()
	landed := all[len(all)-1]
	if landed.Get("Authorization") != "Bearer secret-bearer" || landed.Get("X-Api-Key") != "secret-api-key" || landed.Get("Cookie") == "" {
		t.Errorf("a same-origin redirect lost its headers: %v", landed)
	}
}

// TestNotifyRedirectDropsTheBearerToken: a webhook notifier redirected to
// another port sends neither its bearer token nor its URL (as Referer)
// there.
func TestNotifyRedirectDropsTheBearerToken(t *testing.T) {
	other := newRecorder(t, nil)
	first := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/landed", http.StatusTemporaryRedirect)
	})
	cfg := &config.Config{Notifiers: []config.Notifier{{Name: "status", Type: config.NotifierWebhook,
		URL: config.Secret(first.URL + "/hook"), BearerToken: "notifier-token"}}}
	if err := NewNotifiers(cfg, nil).Send(context.Background(), "status", Notice{Subject: "s"}); err != nil {
		t.Fatal(err)
	}
	if got := first.requests(); len(got) != 1 || got[0].Get("Authorization") != "Bearer notifier-token" {
		t.Fatalf("the notifier's own URL got %v, want its token", got)
	}
	got := other.requests()
	if len(got) != 1 || got[0].Get("Authorization") != "" || got[0].Get("Referer") != "" {
		t.Errorf("the other origin got %v, want one request without Authorization or Referer (the notifier's URL)", got)
	}
}

// TestExecAllowedCommands: a rendered argv[0] outside allowed_commands is
// not run; one inside is.
func TestExecAllowedCommands(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "ran")
	tests := []struct {
		name, program string
		want          string
	}{
		{"label points elsewhere", "/usr/bin/id", "not run: program \"/usr/bin/id\" is not allowed by allowed_commands"},
		{"allowed", "touch", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := execAction(t).Run(context.Background(), Request{Params: map[string]any{
				"argv": []any{tc.program, mark}, "allowed_commands": []any{"touch", "/usr/bin/touch"},
			}})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errNotAllowed) {
					t.Fatalf("Run = %v, want %q", err, tc.want)
				}
				if _, err := os.Stat(mark); err == nil {
					t.Fatal("the refused program ran")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(mark); err != nil {
				t.Fatalf("the allowed program did not run: %v", err)
			}
		})
	}
}

// TestExecLabelsCannotBlockTheStep: a 200 KB label and a label holding a
// NUL reach the child capped and cleaned, and the step runs.
func TestExecLabelsCannotBlockTheStep(t *testing.T) {
	big := strings.Repeat("é", 100<<10) // 200 KiB, two bytes a rune
	many := map[string]string{"big": big, "nul": "a\x00b", "target": "db-1"}
	for _, c := range "abcdefghijklmnopqrstuvwxyz" {
		many["filler_"+string(c)] = strings.Repeat("x", 3<<10)
	}
	out, err := execAction(t).Run(context.Background(), Request{Labels: many, Params: map[string]any{
		"argv": []any{"env"}, "max_output_bytes": 1 << 20,
	}})
	if err != nil {
		t.Fatalf("the step did not run: %v", err)
	}
	env := map[string]string{}
	total := 0
	for _, line := range strings.Split(out.Output, "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
		if strings.HasPrefix(k, "DRGUARD_LABEL_") {
			total += len(line)
		}
	}
	if v := env["DRGUARD_LABEL_BIG"]; len(v) > MaxLabelValueBytes || len(v) < MaxLabelValueBytes-1 || !strings.HasPrefix(big, v) {
		t.Errorf("DRGUARD_LABEL_BIG has %d bytes, want the first %d of the label, cut on a rune", len(v), MaxLabelValueBytes)
	}
	if v := env["DRGUARD_LABEL_NUL"]; v != "a\uFFFDb" {
		t.Errorf("DRGUARD_LABEL_NUL = %q, want the NUL replaced", v)
	}
	if env["DRGUARD_LABELS_TRUNCATED"] != "1" || total > MaxLabelEnvBytes {
		t.Errorf("truncated flag %q, label variables %d bytes (cap %d)", env["DRGUARD_LABELS_TRUNCATED"], total, MaxLabelEnvBytes)
	}
	if _, ok := env["DRGUARD_LABEL_FILLER_Z"]; ok {
		t.Errorf("labels past the total cap are passed")
	}
	if env["DRGUARD_LABEL_TARGET"] != "db-1" {
		t.Errorf("DRGUARD_LABEL_TARGET = %q", env["DRGUARD_LABEL_TARGET"])
	}
}

package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/server"
)

// lockedBuffer is a log sink safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, so that the daemon sees another source.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func get(t *testing.T, c *http.Client, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestRepeatedAuthFailuresAreCountedLoggedAndSlowed: 300 wrong tokens from
// one address are each counted, logged only a few times (with the address,
// never the token), and answered 429 with Retry-After once the address
// has used its allowance; meanwhile the right token from another address
// still works, and the blocked address is refused even with the right one.
func TestRepeatedAuthFailuresAreCountedLoggedAndSlowed(t *testing.T) {
	logs := &lockedBuffer{}
	a := startApp(t, noPolicies, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	attacker, other := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	const wrong = "wrong-token-guess-0000"
	var unauthorized, limited int
	for i := range 300 {
		resp := get(t, attacker, a.URL+"/api/v1/incidents", wrong)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			unauthorized++
			if limited > 0 {
				t.Fatalf("request %d: 401 after a 429: the limit let a guess through early", i)
			}
		case http.StatusTooManyRequests:
			limited++
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if unauthorized < server.DefaultAuthFailureBurst || unauthorized > server.DefaultAuthFailureBurst+2 || limited < 250 {
		t.Errorf("%d × 401 and %d × 429; want %d × 401 (the allowance) then 429", unauthorized, limited, server.DefaultAuthFailureBurst)
	}
	counted := func(reason string) float64 {
		return metric(t, a.Registry, "drguard_auth_failures_total", "endpoint", "/api/v1/incidents", "reason", reason)
	}
	if got := counted("invalid"); got != float64(unauthorized) {
		t.Errorf("auth_failures_total{reason=invalid} = %v, want %d", got, unauthorized)
	}
	if got := counted("rate_limited"); got != float64(limited) {
		t.Errorf("auth_failures_total{reason=rate_limited} = %v, want %d", got, limited)
	}

	if resp := get(t, other, a.URL+"/api/v1/incidents", viewerToken); resp.StatusCode != 200 {
		t.Errorf("the right token from another address: %d, want 200", resp.StatusCode)
	}
	if resp := get(t, attacker, a.URL+"/api/v1/incidents", viewerToken); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the right token from the blocked address: %d, want 429 until it cools down", resp.StatusCode)
	}
	if resp := get(t, attacker, a.URL+"/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("/healthz from the blocked address: %d (it needs no credentials)", resp.StatusCode)
	}

	out := logs.String()
	lines := strings.Count(out, "authentication failed")
	if lines == 0 || lines > 3 {
		t.Errorf("%d warnings for 300 failures, want 1 to 3:\n%s", lines, out)
	}
	if !strings.Contains(out, "remote=127.0.0.1:") {
		t.Errorf("the warning does not name the remote address:\n%s", out)
	}
	if strings.Contains(out, wrong) {
		t.Errorf("the log contains the token that was tried:\n%s", out)
	}
}

// TestAuthFailureReasons: each kind of refusal is counted under its route
// pattern and reason.
func TestAuthFailureReasons(t *testing.T) {
	a := startApp(t, noPolicies)
	do(t, http.MethodGet, a.URL+"/api/v1/incidents/inc-000001", "", nil)
	do(t, http.MethodPost, a.URL+"/api/v1/pause", viewerToken, nil)
	do(t, http.MethodPost, a.URL+"/api/v1/alerts", "not-the-webhook-token", nil)
	for _, c := range []struct{ endpoint, reason string }{
		{"/api/v1/incidents/{id}", "missing"},
		{"/api/v1/pause", "forbidden"},
		{"/api/v1/alerts", "invalid"},
	} {
		if got := metric(t, a.Registry, "drguard_auth_failures_total", "endpoint", c.endpoint, "reason", c.reason); got != 1 {
			t.Errorf("auth_failures_total{endpoint=%q,reason=%q} = %v, want 1", c.endpoint, c.reason, got)
		}
	}
}

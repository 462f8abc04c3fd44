package probe

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// TestHTTP checks status, latency and body matching against a local server.
func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/health/readiness":
			_, _ = w.Write([]byte(`{"status":"ready","db":"ok"}`))
		case "/slow":
			time.Sleep(150 * time.Millisecond)
		case "/moved":
			http.Redirect(w, r, "/api/health/readiness", http.StatusFound)
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := &config.Config{Targets: config.Targets{HTTP: []config.HTTPTarget{{Name: "web", Service: "shop", URL: srv.URL}}}}
	env, _ := testEnv(t, cfg)
	cases := []struct {
		name   string
		params map[string]any
		fail   string // "" means it must pass
	}{
		{"ready", map[string]any{"path": "/api/health/readiness"}, ""},
		{"body matches", map[string]any{"path": "/api/health/readiness", "body_regexp": `"status":"ready"`}, ""},
		{"body differs", map[string]any{"path": "/api/health/readiness", "body_regexp": `"status":"degraded"`}, "body does not match"},
		{"500", map[string]any{"path": "/x"}, "status 500, want 2xx"},
		{"500 expected", map[string]any{"path": "/x", "expect_status": []any{500, 503}}, ""},
		{"too slow", map[string]any{"path": "/slow", "max_latency": "50ms"}, "over max_latency"},
		{"redirect followed", map[string]any{"path": "/moved"}, ""},
		{"redirect not followed", map[string]any{"path": "/moved", "no_follow_redirects": true}, "status 302"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runOnce(t, env, mkProbe("web", "http", "web", time.Second, tc.params))
			if tc.fail == "" {
				mustOK(t, tc.name, r)
			} else {
				mustFail(t, tc.name, r, tc.fail)
			}
			if r.Observations["latency_seconds"] <= 0 || r.Duration <= 0 || r.CheckedAt.IsZero() {
				t.Errorf("observations %v duration %s checked %v", r.Observations, r.Duration, r.CheckedAt)
			}
		})
	}
}

// TestHTTPHungTarget runs an http probe against a listener that accepts
// and never answers, next to a healthy one, in a scheduler: the hung one
// fails at its deadline and fires, the healthy one keeps passing on time.
func TestHTTPHungTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ok.Close)
	cfg := &config.Config{Targets: config.Targets{HTTP: []config.HTTPTarget{
		{Name: "hung", URL: "http://" + ln.Addr().String()}, {Name: "ok", URL: ok.URL}}}}
	env, m := testEnv(t, cfg)

	r := runOnce(t, env, mkProbe("hung", "http", "hung", 200*time.Millisecond, nil))
	mustFail(t, "hung target", r, "timed out")
	if r.Duration > 400*time.Millisecond {
		t.Errorf("hung attempt took %s, want about its 160ms timeout", r.Duration)
	}

	hung := mkProbe("hung", "http", "hung", 100*time.Millisecond, nil)
	// The healthy probe has room for a loaded machine (-race, other
	// tests): what is tested is that the hung one never holds it up.
	healthy := mkProbe("healthy", "http", "ok", 300*time.Millisecond, nil)
	healthy.FailureThreshold = 3
	s, rec := startScheduler(t, env, hung, healthy)
	start := time.Now()
	d := rec.waitStatus(t, "hung", "firing", 2*time.Second)
	// The attempt that fires either timed out itself or found the one
	// before it still running (a loaded machine is slow to cancel it).
	if !strings.Contains(d.Evidence.Reason, "timed out") && !strings.Contains(d.Evidence.Reason, "the target is hung") {
		t.Errorf("evidence reason %q", d.Evidence.Reason)
	}
	time.Sleep(time.Second - time.Since(start))
	if last, _ := s.LastResult("healthy"); !last.OK || time.Since(last.CheckedAt) > 700*time.Millisecond {
		t.Errorf("healthy probe's last result %+v is stale or failing", last)
	}
	if gauge(m.Success, "healthy", "http", "shop") != 1 || gauge(m.Success, "hung", "http", "shop") != 0 {
		t.Error("probe_success does not show healthy=1 hung=0")
	}
	if _, fired := rec.last("healthy"); fired {
		t.Error("the healthy probe fired")
	}
}

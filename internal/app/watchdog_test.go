package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestWatchdogOpensRegionFailureOnlyWhenCorroborated: drguard expects the
// primary region's Watchdog every 500ms and declares it missing after 2s.
// Its notifications open nothing. When it stops, a DrguardWatchdogMissing
// incident opens, but the region-failure policy waits for corroboration:
// the watchdog resuming first resolves it with nothing run. When it stops
// again and the application's readiness probe from this side fails too,
// the policy runs, once.
func TestWatchdogOpensRegionFailureOnlyWhenCorroborated(t *testing.T) {
	var appDown atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if appDown.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer app.Close()
	out := t.TempDir()
	a := startApp(t, fmt.Sprintf(`
targets:
  http:
    - {name: app-dr, service: demo, url: %q}
probes:
  - {name: app-ready-from-dr, type: http, target: app-dr, scenario: app_down, interval: 200ms, timeout: 150ms, failure_threshold: 2}
watchdogs:
  - name: us-east-1
    matchers: ['alertname="Watchdog"', 'region="us-east-1"']
    repeat_interval: 300ms
    missing_after: 2s
    labels: {region: us-east-1}
policies:
  - name: region-failure
    matchers: ['alertname="DrguardWatchdogMissing"', 'region="us-east-1"']
    corroborate:
      window: 1m
      requires: ['{alertname="DrguardProbeFailed", probe="app-ready-from-dr"}']
    steps:
      - name: failover
        action: exec
        params: {argv: ["mktemp", "-p", %q, "failover.XXXXXX"]}
`, app.URL, out))

	var beating atomic.Bool
	beating.Store(true)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		for ctx.Err() == nil {
			if beating.Load() {
				body := webhook("firing", haStart, map[string]string{"alertname": "Watchdog", "region": "us-east-1", "fp": "watchdog-us-east-1"})
				_, _, _ = testharness.Send(http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, strings.NewReader(string(body)))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	missing := func() []store.Incident {
		var list struct{ Incidents []store.Incident }
		getJSON(t, a.URL+"/api/v1/incidents", &list)
		var out []store.Incident
		for _, in := range list.Incidents {
			if in.Labels["alertname"] == "Watchdog" {
				t.Fatalf("a watchdog notification opened incident %s", in.ID)
			}
			if in.Labels["alertname"] == detect.AlertNameWatchdogMissing {
				out = append(out, in)
			}
		}
		return out
	}
	failovers := func() int {
		m, _ := filepath.Glob(filepath.Join(out, "failover.*"))
		return len(m)
	}
	time.Sleep(3 * time.Second) // beating: nothing is missing
	if got := missing(); len(got) != 0 {
		t.Fatalf("%d missing-watchdog incidents while it beats, want none", len(got))
	}

	// The watchdog stops, then resumes before anything corroborates it.
	beating.Store(false)
	testharness.Eventually(t, 10*time.Second, "the watchdog to be declared missing", func() bool {
		got := missing()
		return len(got) == 1 && timelineHas(got[0], "awaiting_corroboration")
	})
	beating.Store(true)
	testharness.Eventually(t, 10*time.Second, "the resumed watchdog to resolve it", func() bool {
		got := missing()
		return len(got) == 1 && got[0].State == store.IncidentResolved && timelineHas(got[0], "not_corroborated")
	})
	if got := missing(); len(got[0].RunIDs) != 0 || failovers() != 0 {
		t.Fatalf("an uncorroborated watchdog started %d runs (%d failovers)", len(got[0].RunIDs), failovers())
	}

	// It stops again, and the application fails from this side too.
	beating.Store(false)
	testharness.Eventually(t, 10*time.Second, "the watchdog to be missing again", func() bool { return len(missing()) == 2 })
	appDown.Store(true)
	testharness.Eventually(t, 15*time.Second, "the corroborated region failure to run", func() bool { return failovers() == 1 })
	var open store.Incident
	for _, in := range missing() {
		if in.State == store.IncidentOpen {
			open = in
		}
	}
	if len(open.RunIDs) != 1 || !timelineHas(open, "corroborated") {
		t.Errorf("incident %s: runs %v, timeline %v; want one run after corroboration", open.ID, open.RunIDs, open.Timeline)
	}
	time.Sleep(time.Second)
	if n := failovers(); n != 1 {
		t.Errorf("the failover ran %d times, want once", n)
	}
}

// timelineHas reports whether the incident's timeline has an event of kind.
func timelineHas(in store.Incident, kind string) bool {
	for _, ev := range in.Timeline {
		if ev.Kind == kind {
			return true
		}
	}
	return false
}

package remediate

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// corroboratedHarness runs a policy on region_failure detections that
// needs a failing readiness detection within 10 minutes.
func corroboratedHarness(t *testing.T) *harness {
	h := newHarness(t)
	p := config.Policy{Name: "region", Matchers: []string{`scenario="region_failure"`}, Steps: []config.Step{h.markStep("failover")},
		Corroborate: &config.Corroborate{Window: model.Duration(10 * time.Minute), Requires: []string{`{alertname="AppDown"}`}}}
	return h.run(defaultConfig(p))
}

func region(target string) map[string]string {
	return map[string]string{"alertname": "WatchdogMissing", "scenario": "region_failure", "target": target}
}

func appDown(target string) map[string]string {
	return map[string]string{"alertname": "AppDown", "scenario": "app_down", "target": target}
}

// TestCorroboration is a table of orders and times: a trigger runs its
// policy only while a corroborating detection fires too, started within
// the window; a wait ends at the window, or when the trigger resolves.
func TestCorroboration(t *testing.T) {
	cases := []struct {
		name string
		play func(h *harness)
		runs bool
		// kinds are timeline events the trigger's incident must have.
		kinds []string
	}{
		{name: "the corroborating detection first", runs: true, kinds: []string{"corroborated"}, play: func(h *harness) {
			h.fire("app", appDown("a"))
			h.eventually("the app incident", func() bool { return h.hasIncident("app") })
			h.fire("trigger", region("r"))
		}},
		{name: "the trigger first, corroborated while it waits", runs: true, kinds: []string{"awaiting_corroboration", "corroborated"}, play: func(h *harness) {
			h.fire("trigger", region("r"))
			h.eventually("the trigger's incident", func() bool { return h.hasIncident("trigger") })
			h.clock.Advance(5 * time.Minute)
			h.fire("app", appDown("a"))
		}},
		{name: "the trigger resolves first", kinds: []string{"awaiting_corroboration", "not_corroborated"}, play: func(h *harness) {
			h.fire("trigger", region("r"))
			h.eventually("the trigger's incident", func() bool { return h.hasIncident("trigger") })
			h.alert(detect.StatusResolved, "trigger", t0, region("r"))
			h.eventually("the resolution", func() bool { in, _ := h.incident("trigger"); return in.State == store.IncidentResolved })
			h.fire("app", appDown("a"))
		}},
		{name: "the wait ends at the window", kinds: []string{"awaiting_corroboration", "not_corroborated"}, play: func(h *harness) {
			h.fire("trigger", region("r"))
			h.eventually("the trigger's incident", func() bool { return h.hasIncident("trigger") })
			h.clock.Advance(11 * time.Minute)
			h.eventually("the wait to end", func() bool { in, _ := h.incident("trigger"); return timelineHasKind(in, "not_corroborated") })
			h.fire("app", appDown("a"))
		}},
		{name: "a corroborating detection that started too long before", kinds: []string{"awaiting_corroboration"}, play: func(h *harness) {
			h.alert(detect.StatusFiring, "app", t0.Add(-time.Hour), appDown("a"))
			h.fire("trigger", region("r"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := corroboratedHarness(t)
			tc.play(h)
			h.eventually("the trigger's incident", func() bool { return h.hasIncident("trigger") })
			if tc.runs {
				h.waitRun("trigger", store.RunSucceeded)
			}
			time.Sleep(200 * time.Millisecond)
			in, runs := h.incident("trigger")
			if got := len(runs); got != map[bool]int{true: 1, false: 0}[tc.runs] || h.marks("failover") != len(runs) {
				t.Errorf("%d runs, %d marks; want a run: %v", got, h.marks("failover"), tc.runs)
			}
			for _, k := range tc.kinds {
				if !timelineHasKind(in, k) {
					t.Errorf("no %s event in %v", k, in.Timeline)
				}
			}
		})
	}
}

package remediate

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

func TestVerify(t *testing.T) {
	tests := []struct {
		name      string
		passAfter int32 // checks before the probe passes; -1 never
		nilVerify bool
		onFailure string
		runState  store.RunState
		stepState store.StepState
		reason    string
		timeline  string
		nextRuns  int
	}{
		{name: "passes on third check", passAfter: 2, runState: store.RunSucceeded, stepState: store.StepSucceeded, nextRuns: 1},
		{name: "never passes, abort", passAfter: -1, onFailure: "abort", runState: store.RunFailed, stepState: store.StepFailed,
			reason: "verify pg_up: did not pass within 300ms", nextRuns: 0},
		{name: "never passes, continue", passAfter: -1, onFailure: "continue", runState: store.RunSucceeded, stepState: store.StepFailed,
			reason: "replica still lagging", nextRuns: 1},
		{name: "never passes, escalate", passAfter: -1, onFailure: "escalate", runState: store.RunFailed, stepState: store.StepFailed,
			reason: "replica still lagging", timeline: "escalated", nextRuns: 0},
		{name: "no verifier", nilVerify: true, runState: store.RunFailed, stepState: store.StepFailed,
			reason: "verify pg_up: no verifier is configured", nextRuns: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var calls atomic.Int32
			if !tc.nilVerify {
				h.verifier = detect.VerifierFunc(func(ctx context.Context, check string, labels map[string]string) (detect.Result, error) {
					n := calls.Add(1)
					if check != "pg_up" || labels["target"] != "db-1" {
						t.Errorf("verify(%q, %v)", check, labels)
					}
					if tc.passAfter >= 0 && n > tc.passAfter {
						return detect.Result{OK: true}, nil
					}
					return detect.Result{OK: false, Reason: "replica still lagging"}, nil
				})
			}
			fix := h.markStep("fix")
			fix.Verify = &config.Verify{Probe: "pg_up", Within: model.Duration(300 * time.Millisecond)}
			fix.OnFailure = tc.onFailure
			h.run(defaultConfig(config.Policy{
				Name: "fix", Matchers: []string{`alertname="PostgresDown"`},
				Steps: []config.Step{fix, h.markStep("next")},
			}))
			h.fire("fp-1", labelsFor("db-1"))
			run := h.waitRun("fp-1", tc.runState)
			st := run.Steps[0]
			if st.State != tc.stepState || !strings.Contains(st.Reason, tc.reason) {
				t.Errorf("step %s %q, want %s with %q", st.State, st.Reason, tc.stepState, tc.reason)
			}
			if h.marks("fix") != 1 || h.marks("next") != tc.nextRuns {
				t.Errorf("fix ran %d, next ran %d; want 1, %d", h.marks("fix"), h.marks("next"), tc.nextRuns)
			}
			if tc.timeline != "" {
				in, _ := h.incident("fp-1")
				if !timelineHasKind(in, tc.timeline) {
					t.Errorf("no %q timeline event: %+v", tc.timeline, in.Timeline)
				}
			}
			if tc.stepState == store.StepFailed {
				h.wantSteps("fix", "exec", metrics.ResultFailed, 1)
			}
		})
	}
}

func timelineHasKind(in store.Incident, kind string) bool {
	for _, e := range in.Timeline {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

package remediate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// TestApproveAfterResolveIsAConflict: the resolution is acknowledged (in
// the outbox) but no processor has run; approving must still see it.
func TestApproveAfterResolveIsAConflict(t *testing.T) {
	h, a := gatedHarness(t, nil)
	h.idle() // only Decide itself can notice the resolution
	h.alert(detect.StatusResolved, "fp-1", t0, labelsFor("db-1"))
	got, err := h.eng.Decide(context.Background(), a.ID, approver)
	if !errors.Is(err, ErrConflict) || got.State != store.ApprovalObsolete {
		t.Fatalf("approve after resolve: %s, %v; want obsolete, ErrConflict", got.State, err)
	}
	in, runs := h.incident("fp-1")
	if runs[0].State != store.RunObsolete || !strings.Contains(runs[0].Reason, "resolved") || in.State != store.IncidentResolved {
		t.Errorf("run %s (%q), incident %s; want obsolete because the alert resolved, incident resolved", runs[0].State, runs[0].Reason, in.State)
	}
	if runs[0].Steps[0].Attempts != 0 || h.marks("failover") != 0 {
		t.Error("the gated step started")
	}
	h.wantSteps("failover", "exec", metrics.ResultObsolete, 1)
}

// TestResolveAfterApproveNeverStarts: the approval is decided first, the
// resolution arrives before the step starts; the step must not start.
func TestResolveAfterApproveNeverStarts(t *testing.T) {
	h, a := gatedHarness(t, nil)
	h.idle() // no worker: the approved step waits in the journal
	if _, err := h.eng.Decide(context.Background(), a.ID, approver); err != nil {
		t.Fatalf("approve: %v", err)
	}
	h.alert(detect.StatusResolved, "fp-1", t0, labelsFor("db-1"))
	// The worker's turn: it must process the acknowledged resolution
	// before it may start a gated step.
	next, err := h.eng.advance(context.Background(), a.RunID)
	if err != nil || next != nil {
		t.Fatalf("advance = %v, %v; want nothing started", next, err)
	}
	in, runs := h.incident("fp-1")
	run := runs[0]
	if run.State != store.RunObsolete || run.Steps[0].State != store.StepObsolete || run.Steps[0].Attempts != 0 {
		t.Fatalf("run %s, step %s (attempts %d); want obsolete, never started", run.State, run.Steps[0].State, run.Steps[0].Attempts)
	}
	var kinds []string
	for _, ev := range in.Timeline {
		kinds = append(kinds, ev.Kind)
	}
	if got := strings.Join(kinds, " "); !strings.Contains(got, "approved alert_resolved run_obsolete resolved") || strings.Contains(got, "step_started") {
		t.Errorf("timeline %s; want approved, alert_resolved, run_obsolete and no step_started", got)
	}
	// A restart does not revive it.
	h.restart()
	time.Sleep(100 * time.Millisecond)
	if h.marks("failover") != 0 {
		t.Error("the approved step ran after the resolution")
	}
}

// TestOnResolved: a run in progress when its alert resolves stops before
// its next step, unless the policy says on_resolved: continue and the
// step is neither destructive nor gated.
func TestOnResolved(t *testing.T) {
	yes := true
	tests := []struct {
		name       string
		onResolved string
		next       func(*config.Step)
		want       store.RunState
		nextRuns   int
	}{
		{name: "stop", onResolved: config.OnResolvedStop, want: store.RunObsolete},
		{name: "continue", onResolved: config.OnResolvedContinue, want: store.RunSucceeded, nextRuns: 1},
		{name: "continue, destructive next step", onResolved: config.OnResolvedContinue,
			next: func(s *config.Step) { s.Destructive = &yes }, want: store.RunObsolete},
		{name: "continue, gated next step", onResolved: config.OnResolvedContinue,
			next: func(s *config.Step) { s.Approval = config.Approval{Required: true} }, want: store.RunObsolete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			next := h.markStep("next")
			if tc.next != nil {
				tc.next(&next)
			}
			h.run(defaultConfig(config.Policy{
				Name: "fix", Matchers: []string{`alertname="PostgresDown"`}, OnResolved: tc.onResolved,
				Steps: []config.Step{{Name: "drain", Action: "exec", Params: map[string]any{"argv": []any{"sleep", "0.5"}}}, next},
			}))
			h.fire("fp-1", labelsFor("db-1"))
			h.eventually("the first step to run", func() bool {
				if !h.hasIncident("fp-1") {
					return false
				}
				_, runs := h.incident("fp-1")
				return runs[0].Steps[0].State == store.StepRunning
			})
			h.alert(detect.StatusResolved, "fp-1", t0, labelsFor("db-1"))
			run := h.waitRun("fp-1", tc.want)
			if run.Steps[0].State != store.StepSucceeded || h.marks("next") != tc.nextRuns {
				t.Errorf("first step %s, next step ran %d times; want succeeded, %d", run.Steps[0].State, h.marks("next"), tc.nextRuns)
			}
			if tc.want == store.RunObsolete && !strings.Contains(run.Reason, "the alert resolved before") {
				t.Errorf("run reason %q does not say the alert resolved", run.Reason)
			}
			in, _ := h.incident("fp-1")
			if in.State != store.IncidentResolved {
				t.Errorf("incident %s once its run ended, want resolved", in.State)
			}
		})
	}
}

package remediate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// drillHarness runs an engine with one policy for db_down whose only step
// is gated (when gated) and leaves a mark, and a drill correlation held on
// it. claimed receives every incident the correlation claims.
func drillHarness(t *testing.T, gated bool, mutate func(*config.Config)) (h *harness, claimed chan store.Incident) {
	t.Helper()
	h = newHarness(t)
	st := h.markStep("recover")
	st.Name = "recover"
	if gated {
		st.Approval = config.Approval{Required: true, Expires: model.Duration(10 * time.Minute)}
	}
	cfg := defaultConfig(
		config.Policy{Name: "db-recovery", Matchers: []string{`scenario="db_down"`}, Steps: []config.Step{st}},
		config.Policy{Name: "other", Matchers: []string{`scenario="other"`}, Steps: []config.Step{h.markStep("other")}},
	)
	if mutate != nil {
		mutate(cfg)
	}
	h.run(cfg)
	claimed = make(chan store.Incident, 4)
	release := h.eng.Correlate(&Correlation{Drill: "q1", RunID: "drl-000001", Policies: []string{"db-recovery"},
		Notify: func(in store.Incident) { claimed <- in }})
	t.Cleanup(release)
	return h, claimed
}

// claim fires an alert for the drill's policy and returns the incident the
// correlation claimed.
func claim(t *testing.T, h *harness, claimed chan store.Incident) store.Incident {
	t.Helper()
	h.fire("fp-drill", labelsFor("db-1"))
	select {
	case in := <-claimed:
		return in
	case <-time.After(10 * time.Second):
		t.Fatal("the drill's correlation claimed no incident")
	}
	return store.Incident{}
}

// TestCorrelationClaimsIncidents: while a drill's correlation is held, an
// incident its policy matches carries drill="q1", starts no run of its own
// and is handed to the drill; one the drill's policies do not match runs
// as usual; once released, incidents run as usual again.
func TestCorrelationClaimsIncidents(t *testing.T) {
	h, claimed := drillHarness(t, false, nil)
	in := claim(t, h, claimed)
	if in.Labels[LabelDrill] != "q1" || len(in.RunIDs) != 0 {
		t.Fatalf("claimed incident labels %v, runs %v; want drill=q1 and no run", in.Labels, in.RunIDs)
	}
	got, runs := h.incident("fp-drill")
	if got.Labels[LabelDrill] != "q1" || len(runs) != 0 || got.Timeline[len(got.Timeline)-1].Kind != "drill_correlated" {
		t.Errorf("journaled incident %v with %d runs, last event %+v", got.Labels, len(runs), got.Timeline[len(got.Timeline)-1])
	}
	h.fire("fp-other", labelsFor("db-2", "scenario", "other"))
	h.waitRun("fp-other", store.RunSucceeded)
	if other, _ := h.incident("fp-other"); other.Labels[LabelDrill] != "" {
		t.Errorf("an incident of another policy was labelled %v", other.Labels)
	}
	if n := len(h.audits("incident.correlated")); n != 1 {
		t.Errorf("incident.correlated audited %d times, want 1", n)
	}
	if h.marks("recover") != 0 {
		t.Errorf("the claimed incident's policy ran by itself")
	}
}

// TestStartRunOnBehalfOfDrill: the drill starts its policy's run on the
// claimed incident; the run is requested by the drill, guardrails still
// apply (a second request is blocked by the active run), and requests for
// unknown incidents, unknown or non-matching policies are refused.
func TestStartRunOnBehalfOfDrill(t *testing.T) {
	h, claimed := drillHarness(t, true, nil)
	in := claim(t, h, claimed)
	ctx := context.Background()
	run, err := h.eng.StartRun(ctx, RunRequest{IncidentID: in.ID, Policy: "db-recovery", RequestedBy: "drill:q1"})
	if err != nil || run.RequestedBy != "drill:q1" || run.IncidentID != in.ID {
		t.Fatalf("StartRun: %+v, %v", run, err)
	}
	h.waitRun("fp-drill", store.RunAwaitingApproval)
	pending, _ := h.eng.PendingApprovals()
	if len(pending) != 1 || pending[0].RequestedBy != "drill:q1" {
		t.Fatalf("pending approvals %+v, want one requested by drill:q1", pending)
	}
	again, err := h.eng.StartRun(ctx, RunRequest{IncidentID: in.ID, Policy: "db-recovery", RequestedBy: "drill:q1"})
	if err != nil || again.State != store.RunBlocked {
		t.Errorf("second StartRun: %s, %v; want blocked by the active run", again.State, err)
	}
	for _, tc := range []struct {
		name string
		req  RunRequest
		want error
	}{
		{"unknown incident", RunRequest{IncidentID: "inc-999999", Policy: "db-recovery", RequestedBy: "drill:q1"}, ErrNotFound},
		{"unknown policy", RunRequest{IncidentID: in.ID, Policy: "nope", RequestedBy: "drill:q1"}, ErrNotFound},
		{"policy that does not match", RunRequest{IncidentID: in.ID, Policy: "other", RequestedBy: "drill:q1"}, ErrConflict},
		{"no requester", RunRequest{IncidentID: in.ID, Policy: "db-recovery"}, ErrForbidden},
	} {
		if _, err := h.eng.StartRun(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestDrillApprovesItsRequestUnlessFourEyes: without four-eyes the drill's
// own approval (auto_approve) releases the step; with four-eyes the
// requester approving its own request is refused and audited, and a person
// must approve.
func TestDrillApprovesItsRequestUnlessFourEyes(t *testing.T) {
	for _, fourEyes := range []bool{false, true} {
		h, claimed := drillHarness(t, true, func(c *config.Config) { c.Auth.FourEyes = fourEyes })
		in := claim(t, h, claimed)
		ctx := context.Background()
		if _, err := h.eng.StartRun(ctx, RunRequest{IncidentID: in.ID, Policy: "db-recovery", RequestedBy: "drill:q1"}); err != nil {
			t.Fatal(err)
		}
		h.waitRun("fp-drill", store.RunAwaitingApproval)
		pending, _ := h.eng.PendingApprovals()
		byDrill := Decision{Approve: true, Actor: "drill:q1", Role: config.RoleAdmin, Comment: "auto_approve"}
		a, err := h.eng.Decide(ctx, pending[0].ID, byDrill)
		if !fourEyes {
			if err != nil || a.State != store.ApprovalApproved || a.DecidedBy != "drill:q1" {
				t.Fatalf("without four-eyes the drill's approval: %+v, %v", a, err)
			}
			h.waitRun("fp-drill", store.RunSucceeded)
			continue
		}
		if !errors.Is(err, ErrForbidden) || len(h.audits("approval.refused")) != 1 {
			t.Fatalf("with four-eyes the drill approving its own request: %v, refusals audited %d", err, len(h.audits("approval.refused")))
		}
		if _, err := h.eng.Decide(ctx, pending[0].ID, approver); err != nil {
			t.Fatalf("a person's approval: %v", err)
		}
		h.waitRun("fp-drill", store.RunSucceeded)
		if h.marks("recover") != 1 {
			t.Errorf("the step ran %d times, want once", h.marks("recover"))
		}
	}
}

// TestStopRun: a stopped run waiting for an approval ends rejected by the
// person who stopped it; a stopped run whose step is executing finishes
// that step and ends blocked before its next; a run that has ended is left
// alone.
func TestStopRun(t *testing.T) {
	ctx := context.Background()
	t.Run("awaiting approval", func(t *testing.T) {
		h, claimed := drillHarness(t, true, nil)
		in := claim(t, h, claimed)
		if _, err := h.eng.StartRun(ctx, RunRequest{IncidentID: in.ID, Policy: "db-recovery", RequestedBy: "drill:q1"}); err != nil {
			t.Fatal(err)
		}
		h.waitRun("fp-drill", store.RunAwaitingApproval)
		_, runs := h.incident("fp-drill")
		if err := h.eng.StopRun(ctx, runs[0].ID, "alice", "drill drl-000001 aborted"); err != nil {
			t.Fatal(err)
		}
		run := h.waitRun("fp-drill", store.RunRejected)
		if run.Steps[0].State != store.StepRejected || h.marks("recover") != 0 {
			t.Errorf("stopped run: step %s, ran %d times", run.Steps[0].State, h.marks("recover"))
		}
	})
	t.Run("executing", func(t *testing.T) {
		h, claimed := drillHarness(t, false, func(c *config.Config) {
			p := &c.Policies[0]
			slow := config.Step{Name: "slow", Action: "exec", Timeout: model.Duration(10 * time.Second),
				Params: map[string]any{"argv": []any{"sleep", "0.5"}}, OnFailure: config.OnFailureAbort}
			p.Steps = append([]config.Step{slow}, p.Steps...)
		})
		in := claim(t, h, claimed)
		run, err := h.eng.StartRun(ctx, RunRequest{IncidentID: in.ID, Policy: "db-recovery", RequestedBy: "drill:q1"})
		if err != nil {
			t.Fatal(err)
		}
		h.eventually("the slow step to start", func() bool {
			_, runs := h.incident("fp-drill")
			return runs[0].Steps[0].State == store.StepRunning
		})
		if err := h.eng.StopRun(ctx, run.ID, "alice", "drill aborted"); err != nil {
			t.Fatal(err)
		}
		got := h.waitRun("fp-drill", store.RunBlocked)
		if got.Steps[0].State != store.StepSucceeded || got.Steps[1].State != store.StepBlocked || h.marks("recover") != 0 {
			t.Errorf("steps %s, %s (%q); the second ran %d times", got.Steps[0].State, got.Steps[1].State, got.Steps[1].Reason, h.marks("recover"))
		}
		h.wantSteps("db-recovery", "exec", metrics.ResultBlockedStopped, 1)
		if err := h.eng.StopRun(ctx, run.ID, "alice", "again"); err != nil {
			t.Errorf("stopping an ended run: %v", err)
		}
		if err := h.eng.StopRun(ctx, "run-999999", "alice", "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("stopping an unknown run: %v", err)
		}
	})
}

// TestStartRunRefusesResolvedIncident: a run is not started on request for
// an incident whose alert has resolved.
func TestStartRunRefusesResolvedIncident(t *testing.T) {
	h, claimed := drillHarness(t, false, nil)
	in := claim(t, h, claimed)
	h.alert(detect.StatusResolved, "fp-drill", t0, labelsFor("db-1"))
	h.eventually("the resolution", func() bool {
		got, _ := h.incident("fp-drill")
		return got.State == store.IncidentResolved
	})
	if _, err := h.eng.StartRun(context.Background(), RunRequest{IncidentID: in.ID, Policy: "db-recovery", RequestedBy: "drill:q1"}); !errors.Is(err, ErrConflict) {
		t.Errorf("StartRun on a resolved incident: %v, want ErrConflict", err)
	}
}

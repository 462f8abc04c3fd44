package remediate

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// gatedHarness runs a policy whose one step needs approval and leaves a
// mark per execution; it waits until the approval is pending.
func gatedHarness(t *testing.T, mutate func(*config.Config)) (*harness, store.Approval) {
	t.Helper()
	h := newHarness(t)
	st := h.markStep("failover")
	st.Name = "promote"
	st.Params["argv"] = []any{"mktemp", filepath.Join(h.work, "failover.{{ .Target }}.XXXXXX")}
	st.Approval = config.Approval{Required: true, Expires: model.Duration(10 * time.Minute)}
	cfg := defaultConfig(config.Policy{Name: "failover", Matchers: []string{`scenario="db_down"`}, Steps: []config.Step{st}})
	if mutate != nil {
		mutate(cfg)
	}
	h.run(cfg)
	h.fire("fp-1", labelsFor("db-1"))
	h.waitRun("fp-1", store.RunAwaitingApproval)
	pending, err := h.eng.PendingApprovals()
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending approvals = %v (%v), want 1", pending, err)
	}
	h.wantMetric("pending_approvals", func() float64 { return testutil.ToFloat64(h.m.PendingApprovals) }, 1)
	return h, pending[0]
}

var approver = Decision{Approve: true, Actor: "alice", Remote: "10.0.0.7:5000", Comment: "go", Role: config.RoleApprover}

func TestGatedStepShowsRenderedParamsAndExpiry(t *testing.T) {
	h, a := gatedHarness(t, nil)
	argv := a.Params["argv"].([]any)
	if want := filepath.Join(h.work, "failover.db-1.XXXXXX"); argv[1] != want {
		t.Errorf("approval shows argv %q, want the rendered %q", argv, want)
	}
	if want := h.clock.Now().Add(10 * time.Minute); !a.ExpiresAt.Equal(want) {
		t.Errorf("expires at %s, want %s", a.ExpiresAt, want)
	}
	hash, _ := approvalHash(a.Action, a.Target, a.StepIndex, a.Params)
	if a.ParamsHash != hash || a.State != store.ApprovalPending || a.RequestedBy != "drguard" || a.Why != "test alert fp-1" {
		t.Errorf("approval = %+v", a)
	}
	if a.Target != "db-1" || a.Policy != "failover" || a.Step != "promote" || a.Service != "orders" {
		t.Errorf("approval identity = %s/%s/%s/%s", a.Policy, a.Step, a.Target, a.Service)
	}
	if h.marks("failover") != 0 {
		t.Error("gated step ran before approval")
	}
}

func TestConcurrentDecisionsExactlyOneWins(t *testing.T) {
	h, a := gatedHarness(t, nil)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d := approver
			d.Actor = []string{"alice", "bob"}[i%2]
			_, errs[i] = h.eng.Decide(context.Background(), a.ID, d)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrConflict):
			t.Errorf("decision error %v, want ErrConflict", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d decisions succeeded, want exactly 1", ok)
	}
	run := h.waitRun("fp-1", store.RunSucceeded)
	time.Sleep(100 * time.Millisecond)
	if n := h.marks("failover"); n != 1 {
		t.Errorf("executions = %d, want 1", n)
	}
	if run.Steps[0].Attempts != 1 {
		t.Errorf("attempts = %d, want 1", run.Steps[0].Attempts)
	}
	if got := h.audits("approval.approved"); len(got) != 1 || got[0].Remote != approver.Remote || got[0].Detail["comment"] != "go" {
		t.Errorf("approval audit = %+v", got)
	}
	// A late decision on a decided approval is a conflict, not a rerun.
	if _, err := h.eng.Decide(context.Background(), a.ID, approver); !errors.Is(err, ErrConflict) {
		t.Errorf("late decision: %v, want ErrConflict", err)
	}
	h.wantMetric("pending_approvals", func() float64 { return testutil.ToFloat64(h.m.PendingApprovals) }, 0)
	h.wantSteps("failover", "exec", metrics.ResultSucceeded, 1)
}

func TestExpiredApprovalIsNotExecuted(t *testing.T) {
	h, a := gatedHarness(t, nil)
	h.clock.Advance(10*time.Minute + time.Second)
	run := h.waitRun("fp-1", store.RunExpired)
	if run.Steps[0].State != store.StepExpired || !strings.Contains(run.Steps[0].Reason, "expired") {
		t.Errorf("step %s: %s", run.Steps[0].State, run.Steps[0].Reason)
	}
	if _, err := h.eng.Decide(context.Background(), a.ID, approver); !errors.Is(err, ErrConflict) {
		t.Errorf("decision after expiry: %v, want ErrConflict", err)
	}
	time.Sleep(100 * time.Millisecond)
	if h.marks("failover") != 0 {
		t.Error("an expired approval's step ran")
	}
	if len(h.audits("approval.expired")) != 1 {
		t.Error("expiry not audited")
	}
	h.wantSteps("failover", "exec", metrics.ResultExpired, 1)
	h.wantMetric("pending_approvals", func() float64 { return testutil.ToFloat64(h.m.PendingApprovals) }, 0)
}

func TestDecideMarksAnOverdueApprovalExpired(t *testing.T) {
	h, a := gatedHarness(t, nil)
	h.stop() // no expiry loop: Decide itself must notice
	h.clock.Advance(11 * time.Minute)
	got, err := h.eng.Decide(context.Background(), a.ID, approver)
	if !errors.Is(err, ErrConflict) || got.State != store.ApprovalExpired {
		t.Fatalf("Decide = %s, %v; want expired, ErrConflict", got.State, err)
	}
	_, runs := h.incident("fp-1")
	if runs[0].State != store.RunExpired {
		t.Errorf("run %s, want expired", runs[0].State)
	}
}

func TestRejectStopsRun(t *testing.T) {
	h, a := gatedHarness(t, nil)
	d := approver
	d.Approve, d.Comment = false, "not during peak"
	got, err := h.eng.Decide(context.Background(), a.ID, d)
	if err != nil || got.State != store.ApprovalRejected || got.DecidedBy != "alice" || got.Comment != "not during peak" {
		t.Fatalf("Decide = %+v, %v", got, err)
	}
	run := h.waitRun("fp-1", store.RunRejected)
	if run.Steps[0].State != store.StepRejected || !strings.Contains(run.Reason, "rejected by alice") {
		t.Errorf("run %q step %s", run.Reason, run.Steps[0].State)
	}
	time.Sleep(100 * time.Millisecond)
	if h.marks("failover") != 0 {
		t.Error("a rejected step ran")
	}
	if e := h.audits("approval.rejected"); len(e) != 1 || e[0].Actor != "alice" || e[0].Remote != d.Remote {
		t.Errorf("reject audit = %+v", e)
	}
	h.wantSteps("failover", "exec", metrics.ResultRejected, 1)
}

func TestDecideRefusals(t *testing.T) {
	h, a := gatedHarness(t, func(c *config.Config) { c.Auth.FourEyes = true })
	// A run a person requested (a manual run, a drill) names them.
	err := h.store.Update(func(tx *store.Tx) error {
		r, err := tx.Run(a.RunID)
		if err != nil {
			return err
		}
		r.RequestedBy = "carol"
		return tx.PutRun(&r)
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   string
		d    Decision
		want error
	}{
		{"unknown approval", "apr-999999", approver, ErrNotFound},
		{"viewer", a.ID, Decision{Approve: true, Actor: "val", Role: config.RoleViewer}, ErrForbidden},
		{"no actor", a.ID, Decision{Approve: true, Role: config.RoleAdmin}, ErrForbidden},
		{"system actor", a.ID, Decision{Approve: true, Actor: "drguard", Role: config.RoleAdmin}, ErrForbidden},
		{"four eyes: the requester", a.ID, Decision{Approve: true, Actor: "carol", Role: config.RoleAdmin}, ErrForbidden},
		{"four eyes: the requester rejecting", a.ID, Decision{Approve: false, Actor: "carol", Role: config.RoleAdmin}, ErrForbidden},
		{"stale params", a.ID, Decision{Approve: true, Actor: "bob", Role: config.RoleAdmin, ParamsHash: "sha256:0000"}, ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.eng.Decide(context.Background(), tc.id, tc.d); !errors.Is(err, tc.want) {
				t.Fatalf("Decide: %v, want %v", err, tc.want)
			}
		})
	}
	if n := len(h.audits("approval.refused")); n != 2 {
		t.Errorf("four-eyes refusals audited %d times, want 2", n)
	}
	// None of the refusals decided anything.
	if pending, _ := h.eng.PendingApprovals(); len(pending) != 1 || len(pending[0].Votes) != 0 {
		t.Fatalf("pending approvals = %+v after refusals, want 1 without votes", pending)
	}
	d := approver
	d.ParamsHash = a.ParamsHash
	if _, err := h.eng.Decide(context.Background(), a.ID, d); err != nil {
		t.Fatalf("approve with matching hash: %v", err)
	}
	h.waitRun("fp-1", store.RunSucceeded)
}

func TestResolvedAlertObsoletesPendingApproval(t *testing.T) {
	h, a := gatedHarness(t, nil)
	h.alert(detect.StatusResolved, "fp-1", t0, labelsFor("db-1"))
	run := h.waitRun("fp-1", store.RunObsolete)
	in, _ := h.incident("fp-1")
	if in.State != store.IncidentResolved {
		t.Errorf("incident %s, want resolved", in.State)
	}
	if run.Steps[0].State != store.StepObsolete {
		t.Errorf("step %s, want obsolete", run.Steps[0].State)
	}
	got, err := h.eng.Decide(context.Background(), a.ID, approver)
	if !errors.Is(err, ErrConflict) || got.State != store.ApprovalObsolete {
		t.Errorf("Decide on obsolete: %s, %v; want obsolete, ErrConflict", got.State, err)
	}
	h.wantSteps("failover", "exec", metrics.ResultObsolete, 1)
	h.wantMetric("pending_approvals", func() float64 { return testutil.ToFloat64(h.m.PendingApprovals) }, 0)
}

func TestApprovalWaitsAcrossRestart(t *testing.T) {
	h, a := gatedHarness(t, nil)
	h.restart()
	h.wantMetric("pending_approvals", func() float64 { return testutil.ToFloat64(h.m.PendingApprovals) }, 1)
	if _, err := h.eng.Decide(context.Background(), a.ID, approver); err != nil {
		t.Fatalf("approve after restart: %v", err)
	}
	h.waitRun("fp-1", store.RunSucceeded)
	if h.marks("failover") != 1 {
		t.Errorf("executions = %d, want 1", h.marks("failover"))
	}
}

package remediate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

func TestApprovalsRequired(t *testing.T) {
	yes := true
	tests := []struct {
		name     string
		fourEyes bool
		destr    bool
		explicit int // approval.approvals; 0 leaves the default
		want     int
	}{
		{name: "one approver by default", want: 1},
		{name: "four-eyes, destructive step", fourEyes: true, destr: true, want: 2},
		{name: "four-eyes, harmless step", fourEyes: true, want: 1},
		{name: "approvals: 2 without four-eyes", explicit: 2, want: 2},
		{name: "approvals: 3 with four-eyes", fourEyes: true, destr: true, explicit: 3, want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, a := gatedHarness(t, func(c *config.Config) {
				c.Auth.FourEyes = tc.fourEyes
				st := &c.Policies[0].Steps[0]
				if tc.destr {
					st.Destructive = &yes
				}
				st.Approval.Approvals = tc.explicit
			})
			if a.Required != tc.want || a.StillNeeded() != tc.want {
				t.Errorf("approval requires %d (still needed %d), want %d", a.Required, a.StillNeeded(), tc.want)
			}
		})
	}
}

// TestFourEyesNeedsTwoPeople: with four-eyes on, one approval of a
// destructive step leaves it waiting, the same person approving again is
// refused, and a second person's approval runs it once.
func TestFourEyesNeedsTwoPeople(t *testing.T) {
	yes := true
	h, a := gatedHarness(t, func(c *config.Config) {
		c.Auth.FourEyes = true
		c.Policies[0].Steps[0].Destructive = &yes
	})
	alice, bob := approver, approver
	bob.Actor, bob.Remote, bob.Comment = "bob", "10.0.0.8:5000", "agreed"
	got, err := h.eng.Decide(context.Background(), a.ID, alice)
	if err != nil || got.State != store.ApprovalPending || got.StillNeeded() != 1 || len(got.Votes) != 1 || got.Votes[0].Actor != "alice" {
		t.Fatalf("first approval: %+v, %v; want pending, 1 more needed, alice's vote", got, err)
	}
	if _, err := h.eng.Decide(context.Background(), a.ID, alice); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the same person again: %v, want ErrForbidden", err)
	}
	_, runs := h.incident("fp-1")
	if runs[0].State != store.RunAwaitingApproval || h.marks("failover") != 0 {
		t.Fatalf("after one approval the run is %s and ran %d times; want still waiting", runs[0].State, h.marks("failover"))
	}
	got, err = h.eng.Decide(context.Background(), a.ID, bob)
	if err != nil || got.State != store.ApprovalApproved || got.DecidedBy != "bob" || len(got.Votes) != 2 {
		t.Fatalf("second approval: %+v, %v", got, err)
	}
	if v := got.Votes[1]; v.Remote != bob.Remote || v.Comment != "agreed" || v.At.IsZero() {
		t.Errorf("vote not recorded in full: %+v", v)
	}
	run := h.waitRun("fp-1", store.RunSucceeded)
	if h.marks("failover") != 1 || run.Steps[0].Attempts != 1 {
		t.Errorf("executions %d, attempts %d; want 1, 1", h.marks("failover"), run.Steps[0].Attempts)
	}
	if n := len(h.audits("approval.voted")); n != 1 {
		t.Errorf("approval.voted audited %d times, want 1 (alice's)", n)
	}
	if e := h.audits("approval.approved"); len(e) != 1 || e[0].Actor != "bob" {
		t.Errorf("approval.approved audit = %+v, want one by bob", e)
	}
	if e := h.audits("approval.refused"); len(e) != 1 || e[0].Actor != "alice" {
		t.Errorf("approval.refused audit = %+v, want alice's second approval", e)
	}
	in, _ := h.incident("fp-1")
	if !timelineHas(in, "alice approved step promote (apr-000001); 1 more approval needed") {
		t.Errorf("timeline does not say an approval is still needed: %+v", in.Timeline)
	}
}

// TestRejectionNeedsOnePerson: any one approver's rejection decides, even
// after another's approval.
func TestRejectionNeedsOnePerson(t *testing.T) {
	h, a := gatedHarness(t, func(c *config.Config) { c.Policies[0].Steps[0].Approval.Approvals = 2 })
	if _, err := h.eng.Decide(context.Background(), a.ID, approver); err != nil {
		t.Fatal(err)
	}
	no := approver
	no.Actor, no.Approve = "bob", false
	got, err := h.eng.Decide(context.Background(), a.ID, no)
	if err != nil || got.State != store.ApprovalRejected || got.DecidedBy != "bob" {
		t.Fatalf("rejection after one approval: %+v, %v", got, err)
	}
	h.waitRun("fp-1", store.RunRejected)
	if h.marks("failover") != 0 {
		t.Error("a rejected step ran")
	}
}

// TestApprovalHashBindsTargetAndStep: the same parameters on another
// target, or as another step, are another approval.
func TestApprovalHashBindsTargetAndStep(t *testing.T) {
	params := map[string]any{"argv": []any{"systemctl", "restart", "postgresql"}}
	base, _ := approvalHash("exec", "db-1", 0, params)
	for name, other := range map[string][]any{
		"target": {"exec", "db-2", 0, params},
		"step":   {"exec", "db-1", 1, params},
		"action": {"postgres.promote", "db-1", 0, params},
		"params": {"exec", "db-1", 0, map[string]any{"argv": []any{"systemctl", "stop", "postgresql"}}},
	} {
		h, _ := approvalHash(other[0].(string), other[1].(string), other[2].(int), other[3].(map[string]any))
		if h == base {
			t.Errorf("another %s hashes the same: %s", name, h)
		}
	}
	again, _ := approvalHash("exec", "db-1", 0, map[string]any{"argv": []any{"systemctl", "restart", "postgresql"}})
	if again != base || !strings.HasPrefix(base, "sha256:") {
		t.Errorf("hash %s then %s for the same step", base, again)
	}
}

// TestApprovalBoundToTheStep: when the journaled step no longer matches
// what the approval showed, deciding it is a conflict.
func TestApprovalBoundToTheStep(t *testing.T) {
	h, a := gatedHarness(t, nil)
	err := h.store.Update(func(tx *store.Tx) error {
		r, err := tx.Run(a.RunID)
		if err != nil {
			return err
		}
		r.Target = "db-2" // what would run is no longer what was shown
		return tx.PutRun(&r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Decide(context.Background(), a.ID, approver); !errors.Is(err, ErrConflict) {
		t.Fatalf("approving a changed step: %v, want ErrConflict", err)
	}
	if h.marks("failover") != 0 {
		t.Error("the changed step ran")
	}
}

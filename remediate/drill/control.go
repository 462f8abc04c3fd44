package drill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate"
)

// autoApprove gives the drill's approval to the gated steps its runs wait
// on, when the drill auto-approves. Four-eyes refuses it (a requester may
// not approve its own request): the refusal is journaled once and people
// decide.
func (x *execution) autoApprove(runs []store.Run) {
	if !x.d.AutoApprove || x.isAborted() {
		return
	}
	for _, r := range runs {
		if r.State != store.RunAwaitingApproval {
			continue
		}
		for _, st := range r.Steps {
			if st.State != store.StepAwaitingApproval || st.ApprovalID == "" || x.refused[st.ApprovalID] {
				continue
			}
			_, err := x.r.o.Engine.Decide(x.ctx, st.ApprovalID, remediate.Decision{Approve: true, Actor: Requester(x.d.Name),
				Role: config.RoleAdmin, Comment: "auto_approve: drill " + x.run.ID})
			switch {
			case err == nil:
				x.note("auto_approved", "approved step %s of run %s (%s) as %s (auto_approve)", st.Name, r.ID, st.ApprovalID, Requester(x.d.Name))
			case errors.Is(err, remediate.ErrForbidden):
				x.refused[st.ApprovalID] = true
				x.note("auto_approve_refused", "may not approve step %s of run %s: %v; people decide at /remediate", st.Name, r.ID, err)
			case errors.Is(err, remediate.ErrConflict), errors.Is(err, remediate.ErrNotFound):
				x.refused[st.ApprovalID] = true
			default:
				x.r.log.Warn("auto-approval failed; will retry", "run", x.run.ID, "approval", st.ApprovalID, "err", err)
			}
		}
	}
}

// deadline handles the end of the drill's context: drguard stopping, or
// the drill's timeout. Its runs are stopped at their next step on a
// timeout.
func (x *execution) deadline() {
	if x.r.ctx.Err() != nil {
		return
	}
	x.note("timed_out", "the drill did not end within its timeout %s; its runs are stopped at their next step", x.d.Timeout)
	x.mu.Lock()
	x.failure = fmt.Sprintf("timed out after %s", x.d.Timeout)
	x.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.r.ctx), 30*time.Second)
	defer cancel()
	x.stopRuns(ctx, "drill timed out", Requester(x.d.Name))
}

// abort marks the drill aborted and stops its runs at their next step.
func (x *execution) abort(ctx context.Context, actor, remote string) {
	x.mu.Lock()
	if x.aborted {
		x.mu.Unlock()
		return
	}
	x.aborted, x.run.AbortedBy = true, actor
	x.logf("abort_requested", "aborted by %s from %s: the drill's runs stop at their next step", actor, remote)
	x.mu.Unlock()
	x.save()
	if err := x.r.o.Journal.Update(func(tx *store.Tx) error {
		return tx.Audit(store.AuditEntry{Time: x.r.now().UTC(), Actor: actor, Action: "drill.aborted", Subject: x.run.ID, Remote: remote,
			Detail: map[string]string{"drill": x.d.Name}})
	}); err != nil {
		x.r.log.Error("auditing the abort failed", "run", x.run.ID, "err", err)
	}
	x.stopRuns(ctx, "drill aborted", actor)
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// stopRuns stops every active run of the drill at its next step.
func (x *execution) stopRuns(ctx context.Context, why, actor string) {
	for _, r := range x.runs() {
		if !r.Active() {
			continue
		}
		if err := x.r.o.Engine.StopRun(ctx, r.ID, actor, why+" ("+x.run.ID+")"); err != nil {
			x.r.log.Error("stopping a drill's run failed", "run", r.ID, "err", err)
		}
	}
}

// isAborted reports whether the drill was aborted.
func (x *execution) isAborted() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.aborted
}

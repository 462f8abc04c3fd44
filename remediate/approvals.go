package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// Decision is a human's verdict on a gated step.
type Decision struct {
	Approve bool
	Actor   string
	Remote  string
	Comment string
	Role    config.Role
	// ParamsHash, when set, is the hash of the parameters the approver
	// was shown; a different hash is a conflict.
	ParamsHash string
}

// requestApproval creates the approval for step st of run and parks the
// run until someone decides. The approval shows and is bound to the
// step's rendered parameters.
func (t *txn) requestApproval(run *store.Run, inc *store.Incident, st *store.Step) error {
	hash, err := paramsHash(st.Params)
	if err != nil {
		return err
	}
	expires := time.Duration(st.ApprovalExpires)
	if expires <= 0 {
		expires = time.Hour
	}
	d := detect.Detection{Labels: inc.Labels, Annotations: inc.Annotations}
	a := store.Approval{
		RunID: run.ID, IncidentID: inc.ID, StepIndex: st.Index, Step: st.Name,
		Policy: run.Policy, Action: st.Action, Target: run.Target,
		Service: inc.Labels[detect.LabelService], Why: d.Summary(),
		DataAtRisk: inc.Annotations["data_at_risk"],
		Params:     st.Params, ParamsHash: hash, State: store.ApprovalPending,
		RequestedBy: systemActor, CreatedAt: t.now, ExpiresAt: t.now.Add(expires),
	}
	if err := t.tx.PutApproval(&a); err != nil {
		return err
	}
	st.State, st.ApprovalID = store.StepAwaitingApproval, a.ID
	st.Reason = fmt.Sprintf("waiting for approval %s until %s", a.ID, a.ExpiresAt.Format(time.RFC3339))
	run.State, run.UpdatedAt = store.RunAwaitingApproval, t.now
	t.event(inc, "approval_requested", fmt.Sprintf("step %s (%s) waits for approval %s, expires %s", st.Name, st.Action, a.ID, a.ExpiresAt.Format(time.RFC3339)), run.ID, st.Name)
	if err := t.audit(systemActor, "approval.requested", a.ID, "", runDetail(run, "run", run.ID, "step", st.Name, "paramsHash", hash, "expiresAt", a.ExpiresAt.Format(time.RFC3339))); err != nil {
		return err
	}
	log := t.e.log
	t.fx.add(func() {
		log.Info("approval requested", "approval", a.ID, "run", run.ID, "step", st.Name, "expires", a.ExpiresAt)
	})
	return nil
}

// Decide approves or rejects a pending approval. Exactly one of several
// concurrent decisions succeeds: the journal transaction decides. It
// returns ErrNotFound for an unknown id, ErrConflict when the approval is
// no longer pending (decided, expired — it is marked so when past its
// expiry — or obsolete), and ErrForbidden when the role may not approve or
// four-eyes forbids the requester from deciding. Every decision, and every
// refusal on four-eyes grounds, is audited.
func (e *Engine) Decide(ctx context.Context, approvalID string, d Decision) (store.Approval, error) {
	if err := ctx.Err(); err != nil {
		return store.Approval{}, err
	}
	if d.Role != config.RoleApprover && d.Role != config.RoleAdmin {
		return store.Approval{}, fmt.Errorf("%w: role %q may not decide approvals", ErrForbidden, d.Role)
	}
	if d.Actor == "" {
		return store.Approval{}, fmt.Errorf("%w: a decision needs an actor", ErrForbidden)
	}
	var out store.Approval
	var verdict error
	err := e.update(func(t *txn) error {
		a, err := t.tx.Approval(approvalID)
		if errors.Is(err, store.ErrNotFound) {
			verdict = fmt.Errorf("%w: approval %q", ErrNotFound, approvalID)
			return nil
		}
		if err != nil {
			return err
		}
		out = a
		if a.State != store.ApprovalPending {
			verdict = fmt.Errorf("%w: approval %s is already %s", ErrConflict, a.ID, a.State)
			return nil
		}
		run, err := t.tx.Run(a.RunID)
		if err != nil {
			return fmt.Errorf("run %s of approval %s: %w", a.RunID, a.ID, err)
		}
		inc, err := t.tx.Incident(run.IncidentID)
		if err != nil {
			return fmt.Errorf("incident %s of run %s: %w", run.IncidentID, run.ID, err)
		}
		st := awaitingStep(&run, a.ID)
		switch {
		case st == nil:
			// The run moved on without this approval: it is obsolete.
			a.State, a.DecidedAt = store.ApprovalObsolete, t.now
			verdict = fmt.Errorf("%w: approval %s is obsolete: run %s is %s", ErrConflict, a.ID, run.ID, run.State)
			out = a
			if err := t.tx.PutApproval(&a); err != nil {
				return err
			}
			t.approvalsChanged = true
			return nil
		case !t.now.Before(a.ExpiresAt):
			verdict = fmt.Errorf("%w: approval %s expired at %s", ErrConflict, a.ID, a.ExpiresAt.Format(time.RFC3339))
			out, err = t.expire(a, &run, &inc, st)
			return err
		case t.e.cfg.Auth.FourEyes && d.Actor == a.RequestedBy:
			verdict = fmt.Errorf("%w: four-eyes is on and %s requested this step", ErrForbidden, d.Actor)
			return t.audit(d.Actor, "approval.refused", a.ID, d.Remote, runDetail(&run, "reason", "four_eyes"))
		case d.ParamsHash != "" && d.ParamsHash != a.ParamsHash:
			verdict = fmt.Errorf("%w: approval %s now shows different parameters; reload and decide again", ErrConflict, a.ID)
			return nil
		}
		a.DecidedBy, a.DecidedFrom, a.DecidedAt, a.Comment = d.Actor, d.Remote, t.now, d.Comment
		detail := runDetail(&run, "run", run.ID, "step", st.Name, "comment", d.Comment, "paramsHash", a.ParamsHash)
		if d.Approve {
			a.State = store.ApprovalApproved
			st.State, st.Reason = store.StepPending, fmt.Sprintf("approved by %s", d.Actor)
			run.State, run.UpdatedAt = store.RunPending, t.now
			t.event(&inc, "approved", fmt.Sprintf("%s approved step %s (%s)", d.Actor, st.Name, a.ID), run.ID, st.Name)
			if err := t.audit(d.Actor, "approval.approved", a.ID, d.Remote, detail); err != nil {
				return err
			}
			t.wake()
		} else {
			a.State = store.ApprovalRejected
			st.State, st.Reason = store.StepRejected, fmt.Sprintf("rejected by %s", d.Actor)
			t.count(&run, st, metrics.ResultRejected)
			t.event(&inc, "rejected", fmt.Sprintf("%s rejected step %s (%s)", d.Actor, st.Name, a.ID), run.ID, st.Name)
			if err := t.audit(d.Actor, "approval.rejected", a.ID, d.Remote, detail); err != nil {
				return err
			}
			if err := t.endRun(&run, &inc, store.RunRejected, fmt.Sprintf("step %s rejected by %s", st.Name, d.Actor), store.StepSkipped); err != nil {
				return err
			}
		}
		out = a
		return t.putAll(&a, &run, &inc)
	})
	if err != nil {
		return store.Approval{}, err
	}
	if verdict == nil {
		e.log.Info("approval decided", "approval", out.ID, "state", out.State, "actor", d.Actor, "remote", d.Remote)
	}
	return out, verdict
}

// awaitingStep returns the step of run waiting for approval id, or nil.
func awaitingStep(run *store.Run, id string) *store.Step {
	if run.State != store.RunAwaitingApproval {
		return nil
	}
	for i := range run.Steps {
		if run.Steps[i].ApprovalID == id && run.Steps[i].State == store.StepAwaitingApproval {
			return &run.Steps[i]
		}
	}
	return nil
}

// expire marks a pending approval expired; expiry is rejection: the step
// does not run and the run ends expired.
func (t *txn) expire(a store.Approval, run *store.Run, inc *store.Incident, st *store.Step) (store.Approval, error) {
	a.State, a.DecidedBy, a.DecidedAt = store.ApprovalExpired, systemActor, t.now
	st.State, st.Reason = store.StepExpired, fmt.Sprintf("approval %s expired at %s without a decision", a.ID, a.ExpiresAt.Format(time.RFC3339))
	t.count(run, st, metrics.ResultExpired)
	t.event(inc, "expired", st.Reason, run.ID, st.Name)
	if err := t.audit(systemActor, "approval.expired", a.ID, "", runDetail(run, "run", run.ID, "step", st.Name)); err != nil {
		return a, err
	}
	if err := t.endRun(run, inc, store.RunExpired, fmt.Sprintf("approval for step %s expired", st.Name), store.StepSkipped); err != nil {
		return a, err
	}
	return a, t.putAll(&a, run, inc)
}

// obsoleteRun ends an active run because its alert resolved: its pending
// approval (if any) and its steps that had not started become obsolete.
func (t *txn) obsoleteRun(run *store.Run, inc *store.Incident, why string) error {
	for i := range run.Steps {
		st := &run.Steps[i]
		if st.State != store.StepPending && st.State != store.StepAwaitingApproval {
			continue
		}
		if st.ApprovalID != "" {
			a, err := t.tx.Approval(st.ApprovalID)
			if err != nil {
				return fmt.Errorf("approval %s: %w", st.ApprovalID, err)
			}
			if a.State == store.ApprovalPending {
				a.State, a.DecidedBy, a.DecidedAt = store.ApprovalObsolete, systemActor, t.now
				if err := t.tx.PutApproval(&a); err != nil {
					return err
				}
				if err := t.audit(systemActor, "approval.obsolete", a.ID, "", runDetail(run, "run", run.ID, "step", st.Name, "reason", why)); err != nil {
					return err
				}
			}
		}
		st.State, st.Reason = store.StepObsolete, "obsolete: "+why
		t.count(run, st, metrics.ResultObsolete)
	}
	t.event(inc, "obsolete", fmt.Sprintf("run %s is obsolete: %s", run.ID, why), run.ID, "")
	if err := t.endRun(run, inc, store.RunObsolete, why, store.StepObsolete); err != nil {
		return err
	}
	t.approvalsChanged = true
	return nil
}

// putAll writes an approval, its run and its incident, and refreshes the
// pending-approvals gauge.
func (t *txn) putAll(a *store.Approval, run *store.Run, inc *store.Incident) error {
	if err := t.tx.PutApproval(a); err != nil {
		return err
	}
	if err := t.tx.PutRun(run); err != nil {
		return err
	}
	if err := t.tx.PutIncident(inc); err != nil {
		return err
	}
	t.approvalsChanged = true
	return nil
}

// expireApprovals expires every pending approval past its expiry. It
// looks in a read-only transaction first, so that an idle engine does not
// write (and fsync) the journal every tick.
func (e *Engine) expireApprovals() error {
	now := e.now()
	due := false
	err := e.store.View(func(tx *store.Tx) error {
		pending, err := pendingApprovals(tx)
		for _, a := range pending {
			due = due || !now.Before(a.ExpiresAt)
		}
		return err
	})
	if err != nil || !due {
		return err
	}
	return e.update(func(t *txn) error {
		runs, err := t.tx.ActiveRuns()
		if err != nil {
			return err
		}
		for _, run := range runs {
			st := awaitingApprovalStep(&run)
			if st == nil {
				continue
			}
			a, err := t.tx.Approval(st.ApprovalID)
			if err != nil {
				return fmt.Errorf("approval %s: %w", st.ApprovalID, err)
			}
			if a.State != store.ApprovalPending || t.now.Before(a.ExpiresAt) {
				continue
			}
			inc, err := t.tx.Incident(run.IncidentID)
			if err != nil {
				return err
			}
			if _, err := t.expire(a, &run, &inc, st); err != nil {
				return err
			}
		}
		return nil
	})
}

// awaitingApprovalStep returns the step of run that waits for an approval.
func awaitingApprovalStep(run *store.Run) *store.Step {
	if run.State != store.RunAwaitingApproval {
		return nil
	}
	for i := range run.Steps {
		if st := &run.Steps[i]; st.State == store.StepAwaitingApproval && st.ApprovalID != "" {
			return st
		}
	}
	return nil
}

// SetPaused turns the global kill switch on or off. While paused no run
// starts and no step that has not started runs. The change is audited.
func (e *Engine) SetPaused(ctx context.Context, paused bool, actor, remote string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.update(func(t *txn) error {
		s, err := t.tx.Settings()
		if err != nil {
			return err
		}
		s.Paused = paused
		act := "remediation.resumed"
		s.PausedBy, s.PausedAt = "", time.Time{}
		if paused {
			act = "remediation.paused"
			s.PausedBy, s.PausedAt = actor, t.now
		}
		if err := t.tx.PutSettings(s); err != nil {
			return err
		}
		v := 0.0
		if paused {
			v = 1
		}
		t.fx.add(func() {
			e.m.Paused.Set(v)
			e.log.Warn("remediation kill switch changed", "paused", paused, "actor", actor, "remote", remote)
		})
		t.wake()
		return t.audit(actor, act, "remediation", remote, nil)
	})
}

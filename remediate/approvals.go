package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// Decision is a human's verdict on a gated step.
type Decision struct {
	Approve bool
	Actor   string
	Remote  string
	Comment string
	Role    config.Role
	// ParamsHash, when set, is the hash the approver was shown (action,
	// target, parameters, step); a different one is a conflict.
	ParamsHash string
}

// requestApproval creates the approval for step st of run and parks the
// run until enough people decide. The approval shows, and is bound to,
// the step's action, target, rendered parameters and index.
func (t *txn) requestApproval(run *store.Run, inc *store.Incident, st *store.Step) error {
	hash, err := stepHash(run, st)
	if err != nil {
		return err
	}
	d := detect.Detection{Labels: inc.Labels, Annotations: inc.Annotations}
	a := store.Approval{
		RunID: run.ID, IncidentID: inc.ID, StepIndex: st.Index, Step: st.Name,
		Policy: run.Policy, Action: st.Action, Target: run.Target,
		Service: inc.Labels[detect.LabelService], Why: d.Summary(),
		DataAtRisk: inc.Annotations["data_at_risk"],
		Params:     st.Params, ParamsHash: hash, Required: max(st.Approvals, 1),
		RequestedBy: run.RequestedBy, CreatedAt: t.now, ExpiresAt: t.now.Add(time.Duration(st.ApprovalExpires)),
	}
	if a.RequestedBy == "" {
		a.RequestedBy = systemActor
	}
	if err := t.tx.PutApproval(&a); err != nil { // assigns the ID
		return err
	}
	st.ApprovalID = a.ID
	expires := a.ExpiresAt.Format(time.RFC3339)
	if err := t.moveStep(run, inc, st, store.StepAwaitingApproval, note{reason: fmt.Sprintf("waiting for approval %s until %s", a.ID, expires)}); err != nil {
		return err
	}
	if err := t.moveRun(run, inc, store.RunAwaitingApproval, note{}); err != nil {
		return err
	}
	n := note{reason: fmt.Sprintf("needs %d approval(s), expires %s", a.Required, expires),
		detail: []string{"paramsHash", hash, "expiresAt", expires, "required", fmt.Sprint(a.Required)}}
	if err := t.moveApproval(&a, run, inc, st, store.ApprovalPending, n); err != nil {
		return err
	}
	log := t.e.log
	t.fx.add(func() {
		log.Info("approval requested", "approval", a.ID, "run", run.ID, "step", st.Name, "required", a.Required, "expires", a.ExpiresAt)
	})
	return t.tx.PutApproval(&a)
}

// Decide records one person's approval or rejection of a pending
// approval. A rejection decides at once; approvals decide once the step
// has as many as it requires, from different people. Concurrent decisions
// are serialised by the journal: exactly one completes the approval.
//
// Before deciding, the leader processes the outbox, so that a resolution
// of the alert acknowledged before the decision is seen; any replica
// records decisions, and the leader processes the outbox again before the
// approved step starts. Decide returns
// ErrNotFound for an unknown id; ErrConflict when the approval is no longer
// pending (decided, expired — it is marked so when past its expiry — or
// obsolete, which it becomes here when its alert has resolved), or no
// longer shows what the approver saw (d.ParamsHash); ErrForbidden when the
// role may not approve, the person already approved, or, with four-eyes,
// requested the run. Every decision, vote and refusal is audited.
func (e *Engine) Decide(ctx context.Context, approvalID string, d Decision) (store.Approval, error) {
	if err := ctx.Err(); err != nil {
		return store.Approval{}, err
	}
	if d.Role != config.RoleApprover && d.Role != config.RoleAdmin {
		return store.Approval{}, fmt.Errorf("%w: role %q may not decide approvals", ErrForbidden, d.Role)
	}
	if d.Actor == "" || d.Actor == systemActor {
		return store.Approval{}, fmt.Errorf("%w: a decision needs a person as its actor", ErrForbidden)
	}
	if e.Leading() {
		// On a follower the leader catches up before the step starts.
		err := e.catchUp(ctx)
		if err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, store.ErrFenced) {
			return store.Approval{}, fmt.Errorf("processing the outbox before the decision: %w", err)
		}
	}
	var out store.Approval
	var verdict error
	err := e.record(func(t *txn) error {
		var err error
		out, verdict, err = t.decide(approvalID, d)
		return err
	})
	if err != nil {
		return store.Approval{}, err
	}
	if verdict == nil {
		e.log.Info("approval decision recorded", "approval", out.ID, "state", out.State, "actor", d.Actor, "remote", d.Remote,
			"still_needed", out.StillNeeded())
	}
	return out, verdict
}

// decide is Decide's transaction. It returns the approval as it leaves
// it, the verdict for the caller (nil when the decision counted), and an
// error that fails the transaction.
func (t *txn) decide(id string, d Decision) (store.Approval, error, error) {
	a, err := t.tx.Approval(id)
	if errors.Is(err, store.ErrNotFound) {
		return a, fmt.Errorf("%w: approval %q", ErrNotFound, id), nil
	}
	if err != nil {
		return a, nil, err
	}
	if a.State != store.ApprovalPending {
		return a, fmt.Errorf("%w: approval %s is already %s", ErrConflict, a.ID, a.State), nil
	}
	run, err := t.tx.Run(a.RunID)
	if err != nil {
		return a, nil, fmt.Errorf("run %s of approval %s: %w", a.RunID, a.ID, err)
	}
	inc, err := t.tx.Incident(run.IncidentID)
	if err != nil {
		return a, nil, fmt.Errorf("incident %s of run %s: %w", run.IncidentID, run.ID, err)
	}
	st := awaitingStep(&run, a.ID)
	if st == nil {
		// The run moved on without this approval: it is obsolete.
		why := fmt.Sprintf("run %s is %s", run.ID, run.State)
		err := t.moveApproval(&a, &run, &inc, &run.Steps[a.StepIndex], store.ApprovalObsolete, note{reason: why})
		if err == nil {
			err = t.putAll(&a, &run, &inc)
		}
		return a, fmt.Errorf("%w: approval %s is obsolete: %s", ErrConflict, a.ID, why), err
	}
	if refusal, err := t.refuse(&a, &run, &inc, st, d); refusal != nil || err != nil {
		return a, refusal, err
	}
	if !d.Approve {
		return a, nil, t.reject(&a, &run, &inc, st, d)
	}
	return a, nil, t.vote(&a, &run, &inc, st, d)
}

// refuse checks whether decision d on pending approval a of step st may
// count. A refusal that changes the journal (expiry, a resolved alert)
// is written here.
func (t *txn) refuse(a *store.Approval, run *store.Run, inc *store.Incident, st *store.Step, d Decision) (error, error) {
	switch {
	case !t.now.Before(a.ExpiresAt):
		return fmt.Errorf("%w: approval %s expired at %s", ErrConflict, a.ID, a.ExpiresAt.Format(time.RFC3339)), t.expire(a, run, inc, st)
	case stale(run, inc, st) != "":
		why := stale(run, inc, st)
		err := t.obsoleteApproval(a, run, inc, st, why)
		if err == nil {
			err = t.moveRun(run, inc, store.RunObsolete, note{reason: why})
		}
		if err == nil {
			err = t.putAll(a, run, inc)
		}
		return fmt.Errorf("%w: approval %s is obsolete: %s", ErrConflict, a.ID, why), err
	}
	hash, err := stepHash(run, st)
	switch {
	case err != nil:
		return nil, err
	case hash != a.ParamsHash || d.ParamsHash != "" && d.ParamsHash != a.ParamsHash:
		return fmt.Errorf("%w: approval %s now shows a different step; reload and decide again", ErrConflict, a.ID), nil
	case t.e.cfg.Auth.FourEyes && d.Actor == run.RequestedBy:
		return fmt.Errorf("%w: four-eyes is on and %s requested this run", ErrForbidden, d.Actor),
			t.audit(d.Actor, "approval.refused", a.ID, d.Remote, runDetail(run, "reason", "four_eyes: requester"))
	case d.Approve && a.VotedBy(d.Actor):
		return fmt.Errorf("%w: %s has already approved %s; another approver must approve", ErrForbidden, d.Actor, a.ID),
			t.audit(d.Actor, "approval.refused", a.ID, d.Remote, runDetail(run, "reason", "already approved by this person"))
	}
	return nil, nil
}

// reject ends approval a and its run: one rejection is enough.
func (t *txn) reject(a *store.Approval, run *store.Run, inc *store.Incident, st *store.Step, d Decision) error {
	a.DecidedBy, a.DecidedFrom, a.Comment = d.Actor, d.Remote, d.Comment
	n := note{actor: d.Actor, remote: d.Remote, detail: []string{"comment", d.Comment, "paramsHash", a.ParamsHash}}
	if err := t.moveApproval(a, run, inc, st, store.ApprovalRejected, n); err != nil {
		return err
	}
	why := fmt.Sprintf("rejected by %s", d.Actor)
	if err := t.moveStep(run, inc, st, store.StepRejected, note{reason: why}); err != nil {
		return err
	}
	if err := t.moveRun(run, inc, store.RunRejected, note{reason: fmt.Sprintf("step %s %s", st.Name, why)}); err != nil {
		return err
	}
	return t.putAll(a, run, inc)
}

// vote records d's approval; the vote that completes the approval
// releases the step and queues its run.
func (t *txn) vote(a *store.Approval, run *store.Run, inc *store.Incident, st *store.Step, d Decision) error {
	a.Votes = append(a.Votes, store.Vote{Actor: d.Actor, Remote: d.Remote, Comment: d.Comment, At: t.now})
	detail := runDetail(run, "run", run.ID, "step", st.Name, "comment", d.Comment, "paramsHash", a.ParamsHash,
		"votes", fmt.Sprint(len(a.Votes)), "required", fmt.Sprint(max(a.Required, 1)))
	if a.StillNeeded() > 0 {
		msg := fmt.Sprintf("%s approved step %s (%s); %s", d.Actor, st.Name, a.ID, a.Outstanding())
		t.event(inc, "approval_vote", msg, run.ID, st.Name)
		if err := t.audit(d.Actor, "approval.voted", a.ID, d.Remote, detail); err != nil {
			return err
		}
		if err := t.tx.PutApproval(a); err != nil {
			return err
		}
		return t.tx.PutIncident(inc)
	}
	a.DecidedBy, a.DecidedFrom, a.Comment = d.Actor, d.Remote, d.Comment
	n := note{actor: d.Actor, remote: d.Remote, detail: []string{"comment", d.Comment, "paramsHash", a.ParamsHash}}
	if err := t.moveApproval(a, run, inc, st, store.ApprovalApproved, n); err != nil {
		return err
	}
	if err := t.moveStep(run, inc, st, store.StepPending, note{reason: "approved by " + voters(a)}); err != nil {
		return err
	}
	if err := t.moveRun(run, inc, store.RunPending, note{}); err != nil {
		return err
	}
	id := run.ID
	t.fx.add(func() { t.e.hold(id) })
	return t.putAll(a, run, inc)
}

// voters names the people who approved a.
func voters(a *store.Approval) string {
	s := ""
	for i, v := range a.Votes {
		if i > 0 {
			s += ", "
		}
		s += v.Actor
	}
	return s
}

// expire marks a pending approval expired; expiry is rejection: the step
// does not run and the run ends expired. The caller's transaction writes
// approval, run and incident.
func (t *txn) expire(a *store.Approval, run *store.Run, inc *store.Incident, st *store.Step) error {
	why := fmt.Sprintf("approval %s expired at %s without a decision", a.ID, a.ExpiresAt.Format(time.RFC3339))
	if err := t.moveApproval(a, run, inc, st, store.ApprovalExpired, note{reason: why}); err != nil {
		return err
	}
	if err := t.moveStep(run, inc, st, store.StepExpired, note{reason: why}); err != nil {
		return err
	}
	if err := t.moveRun(run, inc, store.RunExpired, note{reason: fmt.Sprintf("approval for step %s expired", st.Name)}); err != nil {
		return err
	}
	return t.putAll(a, run, inc)
}

// obsoleteRun ends an active run that must not go on (its alert
// resolved): a pending approval of its step becomes obsolete, and so do
// its steps that had not started. The caller writes run and inc.
func (t *txn) obsoleteRun(run *store.Run, inc *store.Incident, why string) error {
	if st := awaitingStep(run, ""); st != nil {
		a, err := t.tx.Approval(st.ApprovalID)
		if err != nil {
			return fmt.Errorf("approval %s: %w", st.ApprovalID, err)
		}
		if err := t.obsoleteApproval(&a, run, inc, st, why); err != nil {
			return err
		}
		if err := t.tx.PutApproval(&a); err != nil {
			return err
		}
	}
	return t.moveRun(run, inc, store.RunObsolete, note{reason: why})
}

// obsoleteApproval makes approval a (if still pending) and its step st
// obsolete.
func (t *txn) obsoleteApproval(a *store.Approval, run *store.Run, inc *store.Incident, st *store.Step, why string) error {
	if a.State == store.ApprovalPending {
		if err := t.moveApproval(a, run, inc, st, store.ApprovalObsolete, note{reason: why}); err != nil {
			return err
		}
	}
	return t.moveStep(run, inc, st, store.StepObsolete, note{reason: "obsolete: " + why})
}

// putAll writes an approval, its run and its incident.
func (t *txn) putAll(a *store.Approval, run *store.Run, inc *store.Incident) error {
	if err := t.tx.PutApproval(a); err != nil {
		return err
	}
	if err := t.tx.PutRun(run); err != nil {
		return err
	}
	return t.tx.PutIncident(inc)
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
			st := awaitingStep(&run, "")
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
			if err := t.expire(&a, &run, &inc, st); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetPaused turns the global kill switch on or off. While paused no run
// starts and no step that has not started runs. The change is audited.
func (e *Engine) SetPaused(ctx context.Context, paused bool, actor, remote string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.record(func(t *txn) error {
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
			if e.Leading() { // followers export no leader-only gauge
				e.m.Paused.Set(v)
			}
			e.log.Warn("remediation kill switch changed", "paused", paused, "actor", actor, "remote", remote)
		})
		return t.audit(actor, act, "remediation", remote, nil)
	})
}

package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// startedStep is a step the journal has just marked running.
type startedStep struct {
	run   store.Run
	index int
	// params are what the action gets: the journaled params, or those
	// rendered again when the journal's were redacted.
	params   map[string]any
	previous map[string]map[string]any
	// tm is the term that started the step: its writes are fenced by
	// that term's lease.
	tm *term
}

// outcome is what executing a step gave: the action's outcome, its error
// (or the verification's), and when it ended.
type outcome struct {
	index   int
	out     action.Outcome
	err     error
	failure string // store.FailureVerification, or "": see failureOf
	ended   time.Time
	tm      *term
}

// nextStep is the first step of run that is not settled: pending,
// awaiting approval or running. nil means every step has finished.
func nextStep(run *store.Run) *store.Step {
	for i := range run.Steps {
		switch run.Steps[i].State {
		case store.StepPending, store.StepAwaitingApproval, store.StepRunning:
			return &run.Steps[i]
		}
	}
	return nil
}

// stale says why step st of run may not start because the incident's alert
// has resolved, or "" when it may: a gated or destructive step never
// starts on a resolved alert, another only when the policy says
// on_resolved: continue.
func stale(run *store.Run, inc *store.Incident, st *store.Step) string {
	if inc.AlertStatus != string(detect.StatusResolved) {
		return ""
	}
	switch {
	case st.ApprovalRequired:
		return fmt.Sprintf("the alert resolved before gated step %s started", st.Name)
	case st.Destructive:
		return fmt.Sprintf("the alert resolved before destructive step %s started", st.Name)
	case run.OnResolved != config.OnResolvedContinue:
		return fmt.Sprintf("the alert resolved before step %s started (on_resolved: stop)", st.Name)
	}
	return ""
}

// peek reads run runID and reports whether it has work to do (it is
// active, and waits neither for an approval nor for a running step), and
// whether its next step is gated or destructive: before such a step is
// offered or started, every alert the outbox has acknowledged must be
// processed, so that a resolution already answered 200 is seen.
func (e *Engine) peek(runID string) (work, fresh bool, err error) {
	err = e.store.View(func(tx *store.Tx) error {
		run, err := tx.Run(runID)
		if err != nil {
			return err
		}
		st := nextStep(&run)
		work = run.Active() && run.State != store.RunAwaitingApproval && (st == nil || st.State == store.StepPending)
		fresh = work && st != nil && (st.ApprovalRequired || st.Destructive)
		return nil
	})
	return work, fresh, err
}

// advance decides, in one transaction, what a run does next: start its
// next step (journaled running before it executes), ask for an approval,
// stop at a guardrail or on a resolved alert, or end. It returns the step
// to execute, if any.
func (e *Engine) advance(ctx context.Context, runID string) (*startedStep, error) {
	work, fresh, err := e.peek(runID)
	if err != nil || !work {
		return nil, err
	}
	if fresh {
		if err := e.catchUp(ctx); err != nil {
			return nil, fmt.Errorf("processing the outbox before a gated or destructive step: %w", err)
		}
	}
	var next *startedStep
	err = e.update(func(t *txn) error {
		next = nil
		run, err := t.tx.Run(runID)
		if err != nil {
			return err
		}
		if !run.Active() || run.State == store.RunAwaitingApproval {
			return nil
		}
		inc, err := t.tx.Incident(run.IncidentID)
		if err != nil {
			return fmt.Errorf("incident %s: %w", run.IncidentID, err)
		}
		n, err := t.advanceRun(&run, &inc)
		if err != nil {
			return err
		}
		if err := t.tx.PutRun(&run); err != nil {
			return err
		}
		next = n
		return t.tx.PutIncident(&inc)
	})
	return next, err
}

func (t *txn) advanceRun(run *store.Run, inc *store.Incident) (*startedStep, error) {
	st := nextStep(run)
	switch {
	case st == nil:
		return nil, t.completeRun(run, inc)
	case st.State == store.StepAwaitingApproval:
		return nil, t.moveRun(run, inc, store.RunAwaitingApproval, note{})
	case st.State == store.StepRunning:
		// Only the executor, or crash recovery, settles a running step.
		return nil, nil
	}
	if why := stale(run, inc, st); why != "" {
		return nil, t.obsoleteRun(run, inc, why)
	}
	if b := t.stopRequested(run.ID); b != nil {
		return nil, t.block(run, inc, st, b)
	}
	if st.ApprovalRequired {
		if ok, err := t.gate(run, inc, st); !ok || err != nil {
			return nil, err
		}
	}
	b, err := t.checkStep(st)
	if err != nil {
		return nil, err
	}
	if b != nil {
		return nil, t.block(run, inc, st, b)
	}
	params, ok, err := t.runParams(run, inc, st)
	if err != nil || !ok {
		return nil, err
	}
	if err := t.moveStep(run, inc, st, store.StepRunning, note{}); err != nil {
		return nil, err
	}
	if err := t.moveRun(run, inc, store.RunRunning, note{}); err != nil {
		return nil, err
	}
	prev, err := t.previousResults(run)
	if err != nil {
		return nil, err
	}
	return &startedStep{run: *run, index: st.Index, params: params, previous: prev}, nil
}

// gate handles a gated step before it starts: it asks for an approval
// when none was asked (unless remediation is paused), and checks that an
// approved one still matches the step. It reports whether the step may go
// on to start.
func (t *txn) gate(run *store.Run, inc *store.Incident, st *store.Step) (bool, error) {
	if st.ApprovalID == "" {
		if b, err := t.checkPaused(); err != nil || b != nil {
			if err != nil {
				return false, err
			}
			return false, t.block(run, inc, st, b)
		}
		return false, t.requestApproval(run, inc, st)
	}
	a, err := t.tx.Approval(st.ApprovalID)
	if err != nil {
		return false, fmt.Errorf("approval %s: %w", st.ApprovalID, err)
	}
	if a.State != store.ApprovalApproved {
		return false, fmt.Errorf("step %s of run %s is pending with approval %s %s", st.Name, run.ID, a.ID, a.State)
	}
	hash, err := stepHash(run, st)
	if err != nil {
		return false, err
	}
	if hash != a.ParamsHash {
		why := fmt.Sprintf("the step differs from what approval %s approved; not executed", a.ID)
		if err := t.moveStep(run, inc, st, store.StepFailed, note{reason: why}); err != nil {
			return false, err
		}
		return false, t.moveRun(run, inc, store.RunFailed, note{reason: why})
	}
	return true, nil
}

// checkPaused is the kill switch alone, for steps that are not starting
// yet (an approval request).
func (t *txn) checkPaused() (*block, error) {
	s, err := t.tx.Settings()
	if err != nil || !s.Paused {
		return nil, err
	}
	return pausedBlock(s), nil
}

// completeRun ends a run whose steps have all finished.
func (t *txn) completeRun(run *store.Run, inc *store.Incident) error {
	var failed []string
	for _, st := range run.Steps {
		if st.State == store.StepFailed {
			failed = append(failed, st.Name)
		}
	}
	reason := "all steps succeeded"
	if len(failed) > 0 {
		reason = fmt.Sprintf("completed; failed steps continued past: %v", failed)
	}
	return t.moveRun(run, inc, store.RunSucceeded, note{reason: reason})
}

// previousResults gathers earlier results for the same (policy, target):
// the latest journaled in the guard, overlaid with this run's.
func (t *txn) previousResults(run *store.Run) (map[string]map[string]any, error) {
	g, err := t.tx.Guard(guardKey(run.Policy, run.Target))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]any{}
	for k, v := range g.LastResults {
		out[k] = v
	}
	for _, st := range run.Steps {
		if st.State == store.StepSucceeded && st.Result != nil {
			out[st.Name] = st.Result
		}
	}
	return out, nil
}

// runStep executes a step the journal marks running and verifies it. It
// returns nil when ctx ends (shutdown) mid-step: nothing more is journaled,
// the step stays running and recovery records it interrupted.
func (e *Engine) runStep(ctx context.Context, n *startedStep) *outcome {
	run, st := n.run, n.run.Steps[n.index]
	log := e.log.With("run", run.ID, "policy", run.Policy, "step", st.Name, "action", st.Action)
	o := &outcome{index: n.index, tm: n.tm}
	act, ok := e.actions[st.Action]
	if !ok {
		o.err = fmt.Errorf("action %q is not available", st.Action)
	} else {
		timeout := time.Duration(st.Timeout)
		sctx, cancel := context.WithTimeout(ctx, timeout)
		log.Info("step started", "attempt", st.Attempts, "timeout", timeout)
		o.out, o.err = act.Run(sctx, action.Request{
			RunID: run.ID, Step: st.Name, Policy: run.Policy, Target: run.Target,
			Params: n.params, Labels: run.Labels, Annotations: run.Annotations,
			Previous: n.previous, Logger: log,
		})
		cancel()
		if o.err != nil && errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil && !errors.Is(o.err, action.ErrTimedOut) {
			o.err = fmt.Errorf("%w after %s: %w", action.ErrTimedOut, fmtDuration(timeout), o.err)
		}
	}
	if ctx.Err() != nil {
		log.Warn("shutting down during a step; it will be recorded as interrupted", "err", o.err)
		return nil
	}
	if o.err == nil && st.Verify != nil {
		if jerr := e.noteVerifying(n.tm, run.ID, n.index, o.out); jerr != nil {
			log.Error("journaling step output failed", "err", jerr)
		}
		o.err = e.verify(ctx, st.Verify, run.Labels)
		if o.err != nil {
			o.failure = store.FailureVerification
		}
		if ctx.Err() != nil {
			log.Warn("shutting down during verification; the step will be recorded as interrupted")
			return nil
		}
	}
	o.ended = time.Now()
	return o
}

// noteVerifying journals an action's output before a possibly long
// verification.
func (e *Engine) noteVerifying(tm *term, runID string, i int, out action.Outcome) error {
	return e.updateIn(tm, false, func(t *txn) error {
		run, err := t.tx.Run(runID)
		if err != nil {
			return err
		}
		st := &run.Steps[i]
		st.Output = bound(out.Output, maxJournalOutput)
		st.Reason = fmt.Sprintf("verifying: %s within %s", st.Verify.Probe, fmtDuration(time.Duration(st.Verify.Within)))
		return t.tx.PutRun(&run)
	})
}

// complete journals a step's outcome ahead of other transactions, in the
// term that started the step, applies its on_failure, ends the run when
// that was its last step, and reports whether the run is still active.
func (e *Engine) complete(tm *term, runID string, o *outcome) (bool, error) {
	active := false
	err := e.updateIn(tm, true, func(t *txn) error {
		run, err := t.tx.Run(runID)
		if err != nil {
			return err
		}
		inc, err := t.tx.Incident(run.IncidentID)
		if err != nil {
			return err
		}
		if err := t.finishStep(&run, &inc, &run.Steps[o.index], o); err != nil {
			return err
		}
		if run.Active() && nextStep(&run) == nil {
			// That was the last step: the run ends in the same write.
			if err := t.completeRun(&run, &inc); err != nil {
				return err
			}
		}
		if err := t.tx.PutRun(&run); err != nil {
			return err
		}
		active = run.Active()
		return t.tx.PutIncident(&inc)
	})
	if err == nil {
		e.m.StepRecordDelay.Observe(time.Since(o.ended).Seconds())
	}
	return active, err
}

// finishStep records outcome o of running step st and applies its
// on_failure.
func (t *txn) finishStep(run *store.Run, inc *store.Incident, st *store.Step, o *outcome) error {
	result, err := normalize(o.out.Result)
	if err != nil {
		result = nil
	}
	st.Output, st.Result = bound(o.out.Output, maxJournalOutput), result
	if o.err == nil {
		if err := t.moveStep(run, inc, st, store.StepSucceeded, note{}); err != nil {
			return err
		}
		return t.rememberResult(run, st)
	}
	msg := bound(o.err.Error(), maxJournalError)
	st.Error, st.Failure = msg, failureOf(o)
	if err := t.moveStep(run, inc, st, store.StepFailed, note{reason: "failed: " + msg, detail: []string{"error", msg, "on_failure", st.OnFailure}}); err != nil {
		return err
	}
	switch st.OnFailure {
	case config.OnFailureContinue:
		return nil
	case config.OnFailureEscalate:
		t.event(inc, "escalated", fmt.Sprintf("step %s failed; escalated to humans", st.Name), run.ID, st.Name)
		if err := t.audit(systemActor, "run.escalated", run.ID, "", runDetail(run, "step", st.Name)); err != nil {
			return err
		}
		return t.moveRun(run, inc, store.RunFailed, note{reason: fmt.Sprintf("step %s failed; escalated", st.Name)})
	default:
		return t.moveRun(run, inc, store.RunFailed, note{reason: fmt.Sprintf("step %s failed: %s", st.Name, msg)})
	}
}

// rememberResult keeps a successful step's result for later runs of the
// same (policy, target).
func (t *txn) rememberResult(run *store.Run, st *store.Step) error {
	if len(st.Result) == 0 {
		return nil
	}
	g, err := t.tx.Guard(guardKey(run.Policy, run.Target))
	if err != nil {
		return err
	}
	if g.LastResults == nil {
		g.LastResults = map[string]map[string]any{}
	}
	g.LastResults[st.Name] = st.Result
	return t.tx.PutGuard(g)
}

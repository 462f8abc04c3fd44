package remediate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// dispatch starts a goroutine for every active run that has work to do and
// is not already being executed. Runs waiting for approval stay parked.
func (e *Engine) dispatch(ctx context.Context) error {
	var runs []store.Run
	err := e.store.View(func(tx *store.Tx) error {
		var err error
		runs, err = tx.ActiveRuns()
		return err
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range runs {
		if r.State == store.RunAwaitingApproval || e.inFlight[r.ID] || ctx.Err() != nil {
			continue
		}
		e.inFlight[r.ID] = true
		e.wg.Add(1)
		go e.execute(ctx, r.ID)
	}
	return nil
}

// execute drives one run until it ends, parks for an approval, or ctx
// ends. At most one execute per run is in flight in this process, and the
// journal transaction that marks a step running is the only way to run it.
func (e *Engine) execute(ctx context.Context, runID string) {
	defer func() {
		e.mu.Lock()
		delete(e.inFlight, runID)
		e.mu.Unlock()
		e.wg.Done()
		e.Wake() // the run may have become ready again meanwhile
	}()
	for ctx.Err() == nil {
		next, err := e.advance(runID)
		if err != nil {
			e.log.Error("advancing run failed; will retry", "run", runID, "err", err)
			return
		}
		if next == nil {
			return
		}
		e.runStep(ctx, next)
	}
}

// nextStep is a step the journal has just marked running.
type nextStep struct {
	run      store.Run
	index    int
	previous map[string]map[string]any
}

// advance decides, in one transaction, what a run does next: start its
// next step (journaled running before it executes), ask for an approval,
// stop at a guardrail, or end. It returns the step to execute, if any.
func (e *Engine) advance(runID string) (*nextStep, error) {
	var next *nextStep
	err := e.update(func(t *txn) error {
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

func (t *txn) advanceRun(run *store.Run, inc *store.Incident) (*nextStep, error) {
	i := -1
	for j := range run.Steps {
		switch run.Steps[j].State {
		case store.StepPending, store.StepAwaitingApproval, store.StepRunning:
			i = j
		}
		if i >= 0 {
			break
		}
	}
	if i < 0 {
		return nil, t.completeRun(run, inc)
	}
	st := &run.Steps[i]
	switch st.State {
	case store.StepAwaitingApproval:
		run.State = store.RunAwaitingApproval
		return nil, nil
	case store.StepRunning:
		// Only crash recovery may settle a step journaled running.
		t.fx.add(func() {
			t.e.log.Warn("step already journaled running; leaving it to recovery", "run", run.ID, "step", st.Name)
		})
		return nil, nil
	}
	if st.ApprovalRequired {
		if st.ApprovalID == "" {
			if inc.AlertStatus == string(detect.StatusResolved) {
				return nil, t.obsoleteRun(run, inc, "the alert resolved before step "+st.Name+" was offered for approval")
			}
			if b, err := t.checkPaused(); err != nil || b != nil {
				return nil, t.blockStep(run, inc, st, b, err)
			}
			if err := t.requestApproval(run, inc, st); err != nil {
				return nil, err
			}
			t.approvalsChanged = true
			return nil, nil
		}
		a, err := t.tx.Approval(st.ApprovalID)
		if err != nil {
			return nil, fmt.Errorf("approval %s: %w", st.ApprovalID, err)
		}
		if a.State != store.ApprovalApproved {
			return nil, fmt.Errorf("step %s of run %s is pending with approval %s %s", st.Name, run.ID, a.ID, a.State)
		}
		hash, err := paramsHash(st.Params)
		if err != nil {
			return nil, err
		}
		if hash != a.ParamsHash {
			st.State, st.Reason = store.StepFailed, fmt.Sprintf("parameters differ from those approved in %s; not executed", a.ID)
			t.count(run, st, metrics.ResultFailed)
			return nil, t.endRun(run, inc, store.RunFailed, st.Reason, store.StepSkipped)
		}
	}
	b, err := t.checkStep(st)
	if err != nil {
		return nil, err
	}
	if b != nil {
		return nil, t.blockStep(run, inc, st, b, nil)
	}
	st.State, st.Attempts, st.StartedAt = store.StepRunning, st.Attempts+1, t.now
	st.Reason = ""
	run.State, run.UpdatedAt = store.RunRunning, t.now
	t.event(inc, "step_started", fmt.Sprintf("step %s (%s) started, attempt %d", st.Name, st.Action, st.Attempts), run.ID, st.Name)
	if err := t.audit(systemActor, "step.started", run.ID, "", runDetail(run, "step", st.Name, "action", st.Action, "attempt", fmt.Sprint(st.Attempts))); err != nil {
		return nil, err
	}
	prev, err := t.previousResults(run)
	if err != nil {
		return nil, err
	}
	return &nextStep{run: *run, index: i, previous: prev}, nil
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

// blockStep ends a run at a step a guardrail refused.
func (t *txn) blockStep(run *store.Run, inc *store.Incident, st *store.Step, b *block, err error) error {
	if err != nil {
		return err
	}
	st.State, st.Reason = store.StepBlocked, b.reason
	t.count(run, st, b.result)
	t.event(inc, "step_blocked", fmt.Sprintf("step %s blocked: %s", st.Name, b.reason), run.ID, st.Name)
	if err := t.audit(systemActor, "step.blocked", run.ID, "", runDetail(run, "step", st.Name, "guardrail", b.guardrail, "reason", b.reason)); err != nil {
		return err
	}
	return t.endRun(run, inc, store.RunBlocked, fmt.Sprintf("step %s blocked: %s", st.Name, b.reason), store.StepSkipped)
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
	return t.endRun(run, inc, store.RunSucceeded, reason, store.StepSkipped)
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

// runStep executes a step the journal marks running, verifies it, and
// journals the outcome. When ctx ends (shutdown) mid-step nothing more is
// journaled: the step stays running and recovery records it interrupted.
func (e *Engine) runStep(ctx context.Context, n *nextStep) {
	run, st := n.run, n.run.Steps[n.index]
	log := e.log.With("run", run.ID, "policy", run.Policy, "step", st.Name, "action", st.Action)
	act, ok := e.actions[st.Action]
	var out action.Outcome
	var err error
	if !ok {
		err = fmt.Errorf("action %q is not available", st.Action)
	} else {
		timeout := time.Duration(st.Timeout)
		if timeout <= 0 {
			timeout = 5 * time.Minute
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		log.Info("step started", "attempt", st.Attempts, "timeout", timeout)
		out, err = act.Run(sctx, action.Request{
			RunID: run.ID, Step: st.Name, Policy: run.Policy, Target: run.Target,
			Params: st.Params, Labels: run.Labels, Annotations: run.Annotations,
			Previous: n.previous, Logger: log,
		})
		cancel()
		if err != nil && errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil && !strings.Contains(err.Error(), "timed out") {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
	}
	if ctx.Err() != nil {
		log.Warn("shutting down during a step; it will be recorded as interrupted", "err", err)
		return
	}
	if err == nil && st.Verify != nil {
		if jerr := e.noteVerifying(run.ID, n.index, out); jerr != nil {
			log.Error("journaling step output failed", "err", jerr)
		}
		err = e.verify(ctx, st.Verify, run.Labels)
		if ctx.Err() != nil {
			log.Warn("shutting down during verification; the step will be recorded as interrupted")
			return
		}
	}
	if jerr := e.finishStep(run.ID, n.index, out, err); jerr != nil {
		// The step stays journaled running; recovery settles it.
		log.Error("journaling step result failed", "err", jerr)
	}
}

// noteVerifying journals an action's output before a possibly long
// verification.
func (e *Engine) noteVerifying(runID string, i int, out action.Outcome) error {
	return e.update(func(t *txn) error {
		run, err := t.tx.Run(runID)
		if err != nil {
			return err
		}
		st := &run.Steps[i]
		st.Output = bound(out.Output, maxJournalOutput)
		st.Reason = fmt.Sprintf("verifying: %s within %s", st.Verify.Probe, modelDuration(time.Duration(st.Verify.Within)))
		return t.tx.PutRun(&run)
	})
}

// finishStep journals a step's outcome and applies its on_failure.
func (e *Engine) finishStep(runID string, i int, out action.Outcome, stepErr error) error {
	return e.update(func(t *txn) error {
		run, err := t.tx.Run(runID)
		if err != nil {
			return err
		}
		inc, err := t.tx.Incident(run.IncidentID)
		if err != nil {
			return err
		}
		st := &run.Steps[i]
		if st.State != store.StepRunning {
			return fmt.Errorf("step %s of run %s is %s, not running", st.Name, run.ID, st.State)
		}
		result, err := normalize(out.Result)
		if err != nil {
			result = nil
		}
		st.EndedAt, st.Output, st.Result = t.now, bound(out.Output, maxJournalOutput), result
		run.UpdatedAt = t.now
		if stepErr == nil {
			st.State, st.Reason = store.StepSucceeded, ""
			t.count(&run, st, metrics.ResultSucceeded)
			t.event(&inc, "step_succeeded", fmt.Sprintf("step %s (%s) succeeded", st.Name, st.Action), run.ID, st.Name)
			if err := t.rememberResult(&run, st); err != nil {
				return err
			}
			if err := t.audit(systemActor, "step.succeeded", run.ID, "", runDetail(&run, "step", st.Name)); err != nil {
				return err
			}
		} else {
			msg := bound(stepErr.Error(), maxJournalError)
			st.State, st.Error, st.Reason = store.StepFailed, msg, "failed: "+msg
			t.count(&run, st, metrics.ResultFailed)
			t.event(&inc, "step_failed", fmt.Sprintf("step %s (%s) failed: %s", st.Name, st.Action, msg), run.ID, st.Name)
			if err := t.audit(systemActor, "step.failed", run.ID, "", runDetail(&run, "step", st.Name, "error", msg, "on_failure", st.OnFailure)); err != nil {
				return err
			}
			switch st.OnFailure {
			case onFailureContinue:
			case onFailureEscalate:
				t.event(&inc, "escalated", fmt.Sprintf("step %s failed; escalated to humans", st.Name), run.ID, st.Name)
				if err := t.audit(systemActor, "run.escalated", run.ID, "", runDetail(&run, "step", st.Name)); err != nil {
					return err
				}
				if err := t.endRun(&run, &inc, store.RunFailed, fmt.Sprintf("step %s failed; escalated", st.Name), store.StepSkipped); err != nil {
					return err
				}
			default:
				if err := t.endRun(&run, &inc, store.RunFailed, fmt.Sprintf("step %s failed: %s", st.Name, msg), store.StepSkipped); err != nil {
					return err
				}
			}
		}
		if err := t.tx.PutRun(&run); err != nil {
			return err
		}
		return t.tx.PutIncident(&inc)
	})
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

package remediate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// This file is how runs are started, and stopped, on someone's behalf
// rather than by an alert: a drill claims the incidents its injection
// causes (Correlate), starts its policies' runs on them as their requester
// (StartRun), and stops them when it is aborted (StopRun). Four-eyes
// treats the requester as any other: it may not approve its own runs.

// LabelDrill is the label a drill's incidents carry: the drill's name.
const LabelDrill = "drill"

// Correlation claims, while it is held, the new incidents whose labels
// match one of its policies: they carry the label drill=Drill, start no
// run of their own (the drill starts them, as their requester), and
// Notify hears of each once its transaction has committed.
type Correlation struct {
	// Drill is the drill's name, the value of the incidents' drill label.
	Drill string
	// RunID is the drill run's ID, for the incidents' timelines.
	RunID string
	// Policies are the drill's policies.
	Policies []string
	// Notify is called, after commit, with each incident claimed. It must
	// not block.
	Notify func(store.Incident)
}

// Correlate holds c until release is called. The first correlation whose
// policies match a new incident claims it.
func (e *Engine) Correlate(c *Correlation) (release func()) {
	e.mu.Lock()
	e.correlations = append(e.correlations, c)
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.correlations = slices.DeleteFunc(e.correlations, func(x *Correlation) bool { return x == c })
		e.mu.Unlock()
	}
}

// correlationFor returns the correlation claiming an incident with these
// labels, or nil.
func (e *Engine) correlationFor(ls map[string]string) *Correlation {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.correlations {
		for _, p := range e.policies {
			if slices.Contains(c.Policies, p.cfg.Name) && p.matches(ls) {
				return c
			}
		}
	}
	return nil
}

// correlate writes a new incident claimed by c: labelled, with no run.
func (t *txn) correlate(inc *store.Incident, c *Correlation) error {
	inc.Labels = maps.Clone(inc.Labels)
	inc.Labels[LabelDrill] = c.Drill
	t.event(inc, "drill_correlated", fmt.Sprintf("caused by drill %s (%s): its runs are started by the drill", c.Drill, c.RunID), "", "")
	if err := t.audit(systemActor, "incident.correlated", inc.ID, "", map[string]string{"drill": c.Drill, "drill_run": c.RunID}); err != nil {
		return err
	}
	if c.Notify != nil {
		claimed, notify := *inc, c.Notify
		t.fx.add(func() { notify(claimed) })
	}
	return t.tx.PutIncident(inc)
}

// RunRequest asks for a run of a policy on an incident on someone's
// behalf.
type RunRequest struct {
	IncidentID string
	Policy     string
	// RequestedBy is who asks: a drill (drill:NAME) or a person. With
	// four-eyes on, they may not approve the run's gated steps.
	RequestedBy string
}

// StartRun plans a run of the request's policy for the incident, as an
// alert would have, but requested by RequestedBy: guardrails apply (one
// run per policy and target, cooldown, max_runs, the kill switch, dry
// run), so the run returned may already have ended blocked, failed or
// dry_run. It returns ErrNotFound for an unknown incident or policy, and
// ErrConflict when the incident is resolved, its alert has resolved, or the
// policy does not match its labels.
func (e *Engine) StartRun(ctx context.Context, r RunRequest) (store.Run, error) {
	if r.RequestedBy == "" || r.RequestedBy == systemActor {
		return store.Run{}, fmt.Errorf("%w: a run started on request needs its requester", ErrForbidden)
	}
	var p *policy
	for _, x := range e.policies {
		if x.cfg.Name == r.Policy {
			p = x
		}
	}
	if p == nil {
		return store.Run{}, fmt.Errorf("%w: policy %q", ErrNotFound, r.Policy)
	}
	if err := e.catchUp(ctx); err != nil {
		return store.Run{}, fmt.Errorf("processing the outbox before the run: %w", err)
	}
	var out store.Run
	err := e.update(func(t *txn) error {
		inc, err := t.tx.Incident(r.IncidentID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: incident %q", ErrNotFound, r.IncidentID)
		}
		if err != nil {
			return err
		}
		switch {
		case inc.State != store.IncidentOpen || inc.AlertStatus == string(detect.StatusResolved):
			return fmt.Errorf("%w: incident %s is %s and its alert %s", ErrConflict, inc.ID, inc.State, inc.AlertStatus)
		case !p.matches(inc.Labels):
			return fmt.Errorf("%w: policy %q does not match the labels of incident %s", ErrConflict, p.cfg.Name, inc.ID)
		}
		summary := detect.Detection{Labels: inc.Labels, Annotations: inc.Annotations}.Summary()
		run, err := t.planRun(p, &inc, summary, r.RequestedBy)
		if err != nil {
			return err
		}
		inc.RunIDs = append(inc.RunIDs, run.ID)
		out = *run
		return t.tx.PutIncident(&inc)
	})
	return out, err
}

// StopRun stops a run at its next step, on behalf of actor: a run waiting
// for an approval ends rejected by actor at once, a run between steps ends
// blocked at once, and a run whose step is executing ends blocked once
// that step has finished, before the next starts. A run that has ended is
// left as it is. It is the kill switch for one run; the reason is
// journaled.
func (e *Engine) StopRun(ctx context.Context, runID, actor, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := &block{guardrail: "stopped", result: metrics.ResultBlockedStopped, reason: fmt.Sprintf("stopped by %s: %s", actor, reason)}
	e.mu.Lock()
	e.stops[runID] = b
	e.mu.Unlock()
	return e.update(func(t *txn) error {
		run, err := t.tx.Run(runID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: run %q", ErrNotFound, runID)
		}
		if err != nil || !run.Active() {
			return err
		}
		inc, err := t.tx.Incident(run.IncidentID)
		if err != nil {
			return fmt.Errorf("incident %s: %w", run.IncidentID, err)
		}
		st := nextStep(&run)
		switch {
		case run.State == store.RunAwaitingApproval:
			st = awaitingStep(&run, "")
			if st == nil {
				return nil
			}
			a, err := t.tx.Approval(st.ApprovalID)
			if err != nil {
				return fmt.Errorf("approval %s: %w", st.ApprovalID, err)
			}
			t.fx.add(func() { e.clearStop(runID) })
			return t.reject(&a, &run, &inc, st, Decision{Actor: actor, Comment: b.reason})
		case st == nil || st.State == store.StepRunning:
			return nil // its executing step finishes first
		}
		t.fx.add(func() { e.clearStop(runID) })
		if err := t.block(&run, &inc, st, b); err != nil {
			return err
		}
		if err := t.tx.PutRun(&run); err != nil {
			return err
		}
		return t.tx.PutIncident(&inc)
	})
}

// stopRequested returns the block that stops run runID before its next
// step, or nil. The request is forgotten once the transaction that ends
// the run commits (a transaction may run more than once).
func (t *txn) stopRequested(runID string) *block {
	e := t.e
	e.mu.Lock()
	b := e.stops[runID]
	e.mu.Unlock()
	if b != nil {
		t.fx.add(func() { e.clearStop(runID) })
	}
	return b
}

// clearStop forgets a stop request that has taken effect.
func (e *Engine) clearStop(runID string) {
	e.mu.Lock()
	delete(e.stops, runID)
	e.mu.Unlock()
}

// DryRun reports whether the engine only journals what it would do, and
// why.
func (e *Engine) DryRun() (bool, string) { return e.dryRun, e.dryRunWhy }

// RenderParams renders every string of params as a step's parameters are
// rendered, over data, into values normalised as the journal holds them.
func RenderParams(params map[string]any, data TemplateData) (map[string]any, error) {
	return renderParams(params, data)
}

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
)

// outboxBatch is how many alerts one transaction processes.
const outboxBatch = 256

// processOutbox processes every alert in the outbox in arrival order. An
// alert leaves the outbox in the transaction that records its effects, so
// processing after a crash picks up exactly where it stopped.
func (e *Engine) processOutbox(ctx context.Context) error {
	for ctx.Err() == nil {
		alerts, err := e.store.PendingAlerts(outboxBatch)
		if err != nil {
			return err
		}
		if len(alerts) == 0 {
			// Caught up: let the outbox drop what the journal has taken.
			return e.store.TrimOutbox(ctx)
		}
		err = e.update(func(t *txn) error {
			for _, a := range alerts {
				if err := t.processAlert(a); err != nil {
					return fmt.Errorf("alert %d (%s): %w", a.Seq, a.Fingerprint, err)
				}
			}
			return nil
		})
		if err == nil {
			if len(alerts) == outboxBatch {
				// A backlog: pace it, so that webhook intake (which
				// must answer quickly) keeps the CPU and the disk.
				select {
				case <-ctx.Done():
				case <-time.After(settle):
				}
			}
			continue
		}
		// One alert spoiled the batch; process them one by one so the
		// others are not held back. An alert that keeps failing goes to
		// the dead-letter bucket (kept, audited) instead of stalling the
		// outbox behind it.
		e.log.Warn("outbox batch failed; processing alerts one at a time", "err", err)
		for _, a := range alerts {
			err := e.update(func(t *txn) error { return t.processAlert(a) })
			if err == nil {
				delete(e.failures, a.Seq)
				continue
			}
			e.failures[a.Seq]++
			if e.failures[a.Seq] < maxAlertAttempts {
				return fmt.Errorf("alert %d (%s): %w", a.Seq, a.Fingerprint, err)
			}
			reason := fmt.Sprintf("processing failed %d times: %v", maxAlertAttempts, err)
			if derr := e.deadLetter(a, reason); derr != nil {
				return fmt.Errorf("alert %d (%s): %w; dead-lettering it: %v", a.Seq, a.Fingerprint, err, derr)
			}
			delete(e.failures, a.Seq)
		}
	}
	return nil
}

// maxAlertAttempts is how often processing of one alert is tried before it
// is moved to the dead-letter bucket.
const maxAlertAttempts = 3

// deadLetter moves an alert that cannot be processed out of the outbox,
// keeping it in the journal with an audit entry.
func (e *Engine) deadLetter(a store.Alert, reason string) error {
	e.log.Error("alert moved to the dead-letter bucket", "seq", a.Seq, "fingerprint", a.Fingerprint, "reason", reason)
	return e.store.Update(func(tx *store.Tx) error {
		if err := tx.DeadLetter(a.Seq, reason); err != nil {
			return err
		}
		return tx.Audit(store.AuditEntry{Actor: "drguard", Action: "alert.dead_letter", Subject: a.Fingerprint,
			Detail: map[string]string{"seq": fmt.Sprint(a.Seq), "reason": reason}})
	})
}

// processAlert records one alert's effects and acks it.
func (t *txn) processAlert(a store.Alert) error {
	seen := a.ReceivedAt.UTC()
	if seen.IsZero() {
		seen = t.now
	}
	key := detect.Key(a.Fingerprint, a.StartsAt)
	inc, err := t.tx.IncidentByKey(key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if a.Status == string(detect.StatusResolved) {
			// Nothing to close: drguard never saw this condition fire.
			log := t.e.log
			t.fx.add(func() { log.Debug("resolved alert for an unknown incident ignored", "fingerprint", a.Fingerprint) })
			return t.tx.AckAlert(a.Seq)
		}
		if err := t.openIncident(a, key, seen); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		inc.LastSeen = seen
		inc.Repeats++
		if a.Status == string(detect.StatusResolved) && inc.AlertStatus != string(detect.StatusResolved) {
			if err := t.resolveAlert(&inc, a); err != nil {
				return err
			}
		}
		// A firing repeat, or a late one after the resolution, only moves
		// LastSeen: it never starts a second run nor reopens the incident.
		if err := t.tx.PutIncident(&inc); err != nil {
			return err
		}
	}
	return t.tx.AckAlert(a.Seq)
}

// openIncident creates the incident for a new firing alert and starts a
// run for every matching policy that no guardrail blocks. The incident's ID
// is reserved first, so that its runs and audit entries can name it, and
// the incident is written once, complete.
func (t *txn) openIncident(a store.Alert, key string, seen time.Time) error {
	id, err := t.tx.NewIncidentID()
	if err != nil {
		return err
	}
	summary := detect.Detection{Labels: a.Labels, Annotations: a.Annotations}.Summary()
	inc := store.Incident{
		ID: id, Key: key, Source: a.Source, Fingerprint: a.Fingerprint, StartsAt: a.StartsAt,
		Labels: a.Labels, Annotations: a.Annotations,
		State: store.IncidentOpen, AlertStatus: string(detect.StatusFiring),
		FirstSeen: seen, LastSeen: seen,
		// Received, then one event per run or no_match: room for the
		// common cases without growing.
		Timeline: make([]store.Event, 0, 2),
	}
	t.event(&inc, "received", "firing: "+summary, "", "")
	service, scenario := a.Labels[detect.LabelService], a.Labels[detect.LabelScenario]
	source, m, log := a.Source, t.e.m, t.e.log
	t.fx.add(func() {
		m.Detections.WithLabelValues(scenario, source).Inc()
		m.IncidentsOpen.WithLabelValues(service, scenario).Inc()
		log.Info("incident opened", "incident", id, "summary", summary, "source", source)
	})
	if err := t.audit(systemActor, "incident.opened", id, "", map[string]string{"key": key, "source": source}); err != nil {
		return err
	}
	matched := 0
	for _, p := range t.e.policies {
		if !p.matches(inc.Labels) {
			continue
		}
		matched++
		run, err := t.planRun(p, &inc, summary)
		if err != nil {
			return fmt.Errorf("policy %q: %w", p.cfg.Name, err)
		}
		inc.RunIDs = append(inc.RunIDs, run.ID)
	}
	if matched == 0 {
		t.event(&inc, "no_match", "no policy matches this alert; nothing to run", "", "")
	}
	return t.tx.PutIncident(&inc)
}

// planRun journals a run of p for inc: pending when it may start, or
// blocked, failed (a parameter did not render) or dry_run, which are final.
func (t *txn) planRun(p *policy, inc *store.Incident, summary string) (*store.Run, error) {
	target := p.target(inc.Labels)
	run := &store.Run{
		IncidentID: inc.ID, Policy: p.cfg.Name, Target: target, State: store.RunPending,
		Labels: inc.Labels, Annotations: inc.Annotations, CreatedAt: t.now, UpdatedAt: t.now,
	}
	dry, dryWhy := t.e.dryRun, t.e.dryRunWhy
	if !dry && p.cfg.DryRun {
		dry, dryWhy = true, fmt.Sprintf("dry run: policy %q has dry_run on", p.cfg.Name)
	}
	run.DryRun = dry
	if err := t.tx.PutRun(run); err != nil { // assigns the ID templates see
		return nil, err
	}
	data := TemplateData{
		Labels: inc.Labels, Annotations: inc.Annotations,
		Incident: TemplateIncident{ID: inc.ID, Fingerprint: inc.Fingerprint, StartsAt: inc.StartsAt, Summary: summary},
		Run:      TemplateRun{ID: run.ID}, Target: target, Policy: p.cfg.Name,
	}
	var renderErrs []string
	for i, sp := range p.steps {
		st := sp.journalStep(i)
		params, err := renderParams(sp.params, data)
		if err != nil {
			st.State, st.Error = store.StepFailed, bound(err.Error(), maxJournalError)
			st.Reason = "parameters did not render"
			renderErrs = append(renderErrs, fmt.Sprintf("step %s: %v", st.Name, err))
		}
		st.Params = params
		run.Steps = append(run.Steps, st)
	}
	b, err := t.checkRun(p, target)
	if err != nil {
		return nil, err
	}
	switch {
	case b != nil:
		err = t.blockRun(run, inc, b)
	case len(renderErrs) > 0:
		for i := range run.Steps {
			if run.Steps[i].State == store.StepFailed {
				t.count(run, &run.Steps[i], metrics.ResultFailed)
			}
		}
		err = t.finishPlanned(run, inc, store.RunFailed, "parameters did not render: "+strings.Join(renderErrs, "; "), store.StepSkipped)
	case dry:
		for i := range run.Steps {
			st := &run.Steps[i]
			st.State, st.Reason = store.StepDryRun, dryWhy
			if st.ApprovalRequired {
				st.Reason += "; would wait for approval"
			}
			if st.Destructive {
				st.Reason += "; destructive"
			}
			t.count(run, st, metrics.ResultDryRun)
		}
		err = t.finishPlanned(run, inc, store.RunDryRun, dryWhy+"; nothing was executed", store.StepDryRun)
	default:
		if err := t.recordRunStart(p, target, run.ID); err != nil {
			return nil, err
		}
		t.event(inc, "run_started", fmt.Sprintf("run %s of policy %s on %q planned with %d steps", run.ID, p.cfg.Name, target, len(run.Steps)), run.ID, "")
		err = t.audit(systemActor, "run.created", run.ID, "", runDetail(run))
		t.wake()
	}
	if err != nil {
		return nil, err
	}
	return run, t.tx.PutRun(run)
}

// blockRun ends a run that a guardrail refused: every step is blocked with
// the reason and counted with the guardrail's result.
func (t *txn) blockRun(run *store.Run, inc *store.Incident, b *block) error {
	for i := range run.Steps {
		st := &run.Steps[i]
		st.State, st.Reason = store.StepBlocked, b.reason
		t.count(run, st, b.result)
	}
	t.event(inc, "run_blocked", fmt.Sprintf("run %s of policy %s on %q blocked: %s", run.ID, run.Policy, run.Target, b.reason), run.ID, "")
	if err := t.audit(systemActor, "run.blocked", run.ID, "", runDetail(run, "guardrail", b.guardrail, "reason", b.reason)); err != nil {
		return err
	}
	run.State, run.Reason = store.RunBlocked, b.reason
	run.UpdatedAt, run.EndedAt = t.now, t.now
	log := t.e.log
	t.fx.add(func() {
		log.Warn("run blocked by guardrail", "run", run.ID, "policy", run.Policy, "target", run.Target, "guardrail", b.guardrail, "reason", b.reason)
	})
	return nil
}

// finishPlanned ends a run that never became active.
func (t *txn) finishPlanned(run *store.Run, inc *store.Incident, state, reason, skip string) error {
	t.event(inc, "run_"+state, fmt.Sprintf("run %s of policy %s on %q: %s", run.ID, run.Policy, run.Target, reason), run.ID, "")
	for i := range run.Steps {
		if run.Steps[i].State == store.StepPending {
			run.Steps[i].State = skip
		}
	}
	run.State, run.Reason = state, reason
	run.UpdatedAt, run.EndedAt = t.now, t.now
	return t.audit(systemActor, "run."+state, run.ID, "", runDetail(run, "reason", reason))
}

// journalStep is the step as a new run records it.
func (sp stepPlan) journalStep(i int) store.Step {
	st := store.Step{
		Index: i, Name: sp.name, Action: sp.action, State: store.StepPending,
		Destructive: sp.destructive, Idempotent: sp.idempotent,
		Timeout: modelDur(sp.timeout), ApprovalRequired: sp.approval,
		ApprovalExpires: modelDur(sp.approvalExpires), OnFailure: sp.onFailure,
	}
	if sp.verify != nil {
		st.Verify = &store.StepVerify{Probe: sp.verify.Probe, Within: sp.verify.Within}
	}
	return st
}

// resolveAlert records that an incident's alert resolved. Nothing starts;
// runs waiting for approval and runs that have not started any step become
// obsolete (no remediation starts on a cleared condition); runs already in
// progress finish, but a gated step of theirs is not offered for approval.
// The incident resolves now if no run is active, else when the last ends.
func (t *txn) resolveAlert(inc *store.Incident, a store.Alert) error {
	inc.AlertStatus = string(detect.StatusResolved)
	inc.AlertEndsAt = a.EndsAt
	t.event(inc, "alert_resolved", "alert resolved", "", "")
	for _, id := range inc.RunIDs {
		run, err := t.tx.Run(id)
		if err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		if !run.Active() || (run.State != store.RunAwaitingApproval && started(&run)) {
			continue
		}
		if err := t.obsoleteRun(&run, inc, "the alert resolved"); err != nil {
			return err
		}
		if err := t.tx.PutRun(&run); err != nil {
			return err
		}
	}
	return t.maybeResolveIncident(inc, "")
}

// started reports whether any step of run has begun executing.
func started(run *store.Run) bool {
	for _, st := range run.Steps {
		if st.Attempts > 0 || (st.State != store.StepPending && st.State != store.StepAwaitingApproval) {
			return true
		}
	}
	return false
}

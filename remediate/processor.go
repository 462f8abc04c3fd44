package remediate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// Batches of the outbox: how many alerts one transaction processes, fewer
// while steps execute, so that a finished step's transaction never waits
// long behind one.
const (
	outboxBatch     = 256
	outboxBatchBusy = 8
)

// processOutbox processes every alert in the outbox in arrival order. An
// alert leaves the outbox in the transaction that records its effects, so
// processing after a crash picks up exactly where it stopped. A backlog is
// paced, so that webhook intake (which must answer quickly) keeps the CPU
// and the disk.
func (e *Engine) processOutbox(ctx context.Context) error {
	for ctx.Err() == nil {
		n, _, err := e.processBatch()
		if err != nil {
			return err
		}
		if n == 0 {
			// Caught up: let the outbox drop what the journal has taken.
			return e.store.TrimOutbox(ctx)
		}
		if n == outboxBatch {
			select {
			case <-ctx.Done():
			case <-time.After(settle):
			}
		}
	}
	return nil
}

// catchUp processes, without pacing, the alerts the outbox acknowledged
// before it was called, so that a decision or a step start that follows
// knows of every resolution answered 200 before it. It stops at the first
// alert received after it began: the outbox is in commit order, and an
// alert is received before it is committed, so every alert acknowledged
// earlier is behind it. Under a storm it does not chase new arrivals.
func (e *Engine) catchUp(ctx context.Context) error {
	began := time.Now()
	for ctx.Err() == nil {
		n, last, err := e.processBatch()
		if err != nil || n == 0 || last.After(began) {
			return err
		}
	}
	return ctx.Err()
}

// processBatch processes the oldest alerts of the outbox in one
// transaction and returns how many, and when the last was received. When
// the batch fails its alerts are
// processed one by one, so one bad alert does not hold back the others;
// an alert that keeps failing goes to the dead-letter bucket (kept,
// audited) instead of stalling the outbox behind it.
func (e *Engine) processBatch() (int, time.Time, error) {
	e.outboxMu.Lock()
	defer e.outboxMu.Unlock()
	limit := outboxBatch
	if e.busy.Load() > 0 {
		limit = outboxBatchBusy
	}
	alerts, err := e.store.PendingAlerts(limit)
	if err != nil || len(alerts) == 0 {
		return 0, time.Time{}, err
	}
	last := alerts[len(alerts)-1].ReceivedAt
	err = e.update(func(t *txn) error {
		for _, a := range alerts {
			if err := t.processAlert(a); err != nil {
				return fmt.Errorf("alert %d (%s): %w", a.Seq, a.Fingerprint, err)
			}
		}
		return nil
	})
	if err == nil {
		return len(alerts), last, nil
	}
	if errors.Is(err, store.ErrFenced) || errors.Is(err, ErrNotLeader) {
		return 0, last, err
	}
	e.log.Warn("outbox batch failed; processing alerts one at a time", "err", err)
	for _, a := range alerts {
		err := e.update(func(t *txn) error { return t.processAlert(a) })
		if err == nil || errors.Is(err, store.ErrAlreadyAcked) {
			if err != nil {
				e.log.Warn("alert already processed by another transaction; skipped", "seq", a.Seq, "fingerprint", a.Fingerprint)
			}
			delete(e.failures, a.Seq)
			continue
		}
		if errors.Is(err, store.ErrFenced) || errors.Is(err, ErrNotLeader) {
			return 0, last, err
		}
		e.failures[a.Seq]++
		if e.failures[a.Seq] < maxAlertAttempts {
			return 0, last, fmt.Errorf("alert %d (%s): %w", a.Seq, a.Fingerprint, err)
		}
		reason := fmt.Sprintf("processing failed %d times: %v", maxAlertAttempts, err)
		if derr := e.deadLetter(a, reason); derr != nil {
			return 0, last, fmt.Errorf("alert %d (%s): %w; dead-lettering it: %v", a.Seq, a.Fingerprint, err, derr)
		}
		delete(e.failures, a.Seq)
	}
	return len(alerts), last, nil
}

// maxAlertAttempts is how often processing of one alert is tried before it
// is moved to the dead-letter bucket.
const maxAlertAttempts = 3

// deadLetter moves an alert that cannot be processed out of the outbox,
// keeping it in the journal with an audit entry.
func (e *Engine) deadLetter(a store.Alert, reason string) error {
	e.log.Error("alert moved to the dead-letter bucket", "seq", a.Seq, "fingerprint", a.Fingerprint, "reason", reason)
	return e.update(func(t *txn) error {
		if err := t.tx.DeadLetter(a.Seq, reason); err != nil {
			return err
		}
		return t.audit(systemActor, "alert.dead_letter", a.Fingerprint, "", map[string]string{"seq": fmt.Sprint(a.Seq), "reason": reason})
	})
}

// processAlert records one alert's effects and acks it.
func (t *txn) processAlert(a store.Alert) error {
	seen := a.ReceivedAt.UTC()
	if seen.IsZero() {
		seen = t.now
	}
	if name, ok := t.e.watchdogs.Match(a.Labels); ok && a.Source == string(detect.SourceAlertmanager) {
		return t.heartbeat(name, a, seen)
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
	if c := t.e.correlationFor(inc.Labels); c != nil {
		return t.correlate(&inc, c)
	}
	matched := 0
	for _, p := range t.e.policies {
		if !p.matches(inc.Labels) {
			continue
		}
		matched++
		run, err := t.openRun(p, &inc, summary)
		if err != nil {
			return fmt.Errorf("policy %q: %w", p.cfg.Name, err)
		}
		if run != nil {
			inc.RunIDs = append(inc.RunIDs, run.ID)
		}
	}
	if matched == 0 {
		t.event(&inc, "no_match", "no policy matches this alert; nothing to run", "", "")
	}
	if t.e.corroborating {
		if err := t.indexFiring(&inc); err != nil {
			return err
		}
	}
	return t.tx.PutIncident(&inc)
}

// heartbeat records a notification of a watchdog: it moves the watchdog's
// last-seen time, and opens nothing. A resolved notification (the
// region's Prometheus stopped sending it) is no heartbeat.
func (t *txn) heartbeat(name string, a store.Alert, seen time.Time) error {
	if a.Status == string(detect.StatusResolved) {
		log := t.e.log
		t.fx.add(func() { log.Warn("the watchdog resolved: its source stopped sending it", "watchdog", name) })
		return t.tx.AckAlert(a.Seq)
	}
	w, err := t.tx.Watchdog(name)
	if err != nil {
		return err
	}
	if seen.After(w.LastSeen) {
		w.LastSeen = seen
	}
	w.Notifications++
	if err := t.tx.PutWatchdog(w); err != nil {
		return err
	}
	return t.tx.AckAlert(a.Seq)
}

// planRun journals a run of p for inc, requested by requestedBy (drguard
// for a run an alert started): pending when it may start, or blocked,
// failed (a parameter did not render) or dry_run, which are final.
func (t *txn) planRun(p *policy, inc *store.Incident, summary, requestedBy string) (*store.Run, error) {
	target := p.target(inc.Labels)
	run := &store.Run{
		IncidentID: inc.ID, Policy: p.cfg.Name, Target: target, RequestedBy: requestedBy, OnResolved: p.cfg.OnResolved,
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
	renderErrs := renderSteps(p, run, data)
	b, err := t.checkRun(p, target)
	if err != nil {
		return nil, err
	}
	switch {
	case b != nil:
		err = t.block(run, inc, nil, b)
	case len(renderErrs) > 0:
		err = t.planFailed(run, inc, renderErrs)
	case dry:
		err = t.planDryRun(run, inc, dryWhy)
	default:
		err = t.planPending(p, run, inc)
	}
	if err != nil {
		return nil, err
	}
	return run, t.tx.PutRun(run)
}

// renderSteps adds p's steps to run, their parameters rendered over data
// and redacted (redact.go), and returns the rendering errors by step index.
func renderSteps(p *policy, run *store.Run, data TemplateData) map[int]error {
	errs := map[int]error{}
	for i, sp := range p.steps {
		st := sp.journalStep(i)
		params, err := renderParams(sp.params, data)
		if err != nil {
			errs[i] = err
		}
		if params, err = redactParams(params); err != nil {
			errs[i] = err
		}
		st.Params = params
		run.Steps = append(run.Steps, st)
	}
	return errs
}

// planPending makes a new run pending and queues it.
func (t *txn) planPending(p *policy, run *store.Run, inc *store.Incident) error {
	for i := range run.Steps {
		if err := t.moveStep(run, inc, &run.Steps[i], store.StepPending, note{}); err != nil {
			return err
		}
	}
	if err := t.recordRunStart(p, run.Target, run.ID); err != nil {
		return err
	}
	t.enqueue(run.ID)
	return t.moveRun(run, inc, store.RunPending, note{})
}

// planFailed ends a new run whose parameters did not render.
func (t *txn) planFailed(run *store.Run, inc *store.Incident, errs map[int]error) error {
	var msgs []string
	for i := range run.Steps {
		st := &run.Steps[i]
		err, bad := errs[i]
		if !bad {
			continue
		}
		st.Error = bound(err.Error(), maxJournalError)
		msgs = append(msgs, fmt.Sprintf("step %s: %v", st.Name, err))
		if err := t.moveStep(run, inc, st, store.StepFailed, note{reason: "parameters did not render"}); err != nil {
			return err
		}
	}
	return t.moveRun(run, inc, store.RunFailed, note{reason: "parameters did not render: " + strings.Join(msgs, "; ")})
}

// planDryRun ends a new run of a dry run: each step says what it would
// have done.
func (t *txn) planDryRun(run *store.Run, inc *store.Incident, why string) error {
	for i := range run.Steps {
		st := &run.Steps[i]
		reason := why
		if st.ApprovalRequired {
			reason += "; would wait for approval"
		}
		if st.Destructive {
			reason += "; destructive"
		}
		if err := t.moveStep(run, inc, st, store.StepDryRun, note{reason: reason}); err != nil {
			return err
		}
	}
	return t.moveRun(run, inc, store.RunDryRun, note{reason: why + "; nothing was executed"})
}

// block ends a run that a guardrail refused: the step st it stopped at, or
// every step of a new run (st nil), is blocked with the guardrail's reason
// and counted with its result.
func (t *txn) block(run *store.Run, inc *store.Incident, st *store.Step, b *block) error {
	n := note{reason: b.reason, result: b.result, detail: []string{"guardrail", b.guardrail}}
	reason := b.reason
	if st != nil {
		if err := t.moveStep(run, inc, st, store.StepBlocked, n); err != nil {
			return err
		}
		reason = fmt.Sprintf("step %s blocked: %s", st.Name, b.reason)
	} else {
		for i := range run.Steps {
			if err := t.moveStep(run, inc, &run.Steps[i], store.StepBlocked, n); err != nil {
				return err
			}
		}
	}
	n.reason = reason
	return t.moveRun(run, inc, store.RunBlocked, n)
}

// journalStep is the step as a new run records it, in the state of a
// step being planned.
func (sp stepPlan) journalStep(i int) store.Step {
	st := store.Step{
		Index: i, Name: sp.name, Action: sp.action,
		Destructive: sp.destructive, Idempotent: sp.idempotent,
		Timeout: model.Duration(sp.timeout), ApprovalRequired: sp.approval, Approvals: sp.approvals,
		ApprovalExpires: model.Duration(sp.approvalExpires), OnFailure: sp.onFailure,
	}
	if sp.verify != nil {
		st.Verify = &store.StepVerify{Probe: sp.verify.Probe, Within: sp.verify.Within}
	}
	return st
}

// resolveAlert records that an incident's alert resolved. Nothing starts.
// A run waiting for approval becomes obsolete (its approval with it), and
// so does a run between steps whose next step may not start on a resolved
// alert (stale): a run with a step executing finishes that step, and its
// next step is checked before it starts. The incident resolves now if no
// run is active, else when the last ends.
func (t *txn) resolveAlert(inc *store.Incident, a store.Alert) error {
	inc.AlertStatus = string(detect.StatusResolved)
	inc.AlertEndsAt = a.EndsAt
	t.event(inc, "alert_resolved", "alert resolved", "", "")
	if err := t.audit(systemActor, "incident.alert_resolved", inc.ID, "", nil); err != nil {
		return err
	}
	if t.e.corroborating {
		if err := t.unindexFiring(inc); err != nil {
			return err
		}
	}
	for _, id := range inc.RunIDs {
		run, err := t.tx.Run(id)
		if err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		st := nextStep(&run)
		if !run.Active() || st == nil || st.State == store.StepRunning {
			continue
		}
		why := stale(&run, inc, st)
		if why == "" {
			continue
		}
		if err := t.obsoleteRun(&run, inc, why); err != nil {
			return err
		}
		if err := t.tx.PutRun(&run); err != nil {
			return err
		}
	}
	return t.maybeResolveIncident(inc, "")
}

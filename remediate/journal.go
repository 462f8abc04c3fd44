package remediate

import (
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// systemActor is the audit actor for what drguard does by itself.
const systemActor = "drguard"

// Bounds on what the journal keeps of a step's output and error.
const (
	maxJournalOutput = 64 << 10
	maxJournalError  = 4 << 10
)

// txn is one journal transaction with the engine's helpers: the clock of
// the transaction, the effects to apply after commit, timeline and audit.
type txn struct {
	e   *Engine
	tx  *store.Tx
	fx  *effects
	now time.Time
	// approvalsChanged asks for the pending-approvals gauge to be set
	// from the journal once the transaction's writes are done.
	approvalsChanged bool
}

// event appends a line to an incident's timeline.
func (t *txn) event(inc *store.Incident, kind, msg, runID, step string) {
	inc.Timeline = append(inc.Timeline, store.Event{Time: t.now, Kind: kind, Message: msg, RunID: runID, Step: step})
}

// audit appends an entry to the audit log.
func (t *txn) audit(actor, act, subject, remote string, detail map[string]string) error {
	return t.tx.Audit(store.AuditEntry{Time: t.now, Actor: actor, Action: act, Subject: subject, Remote: remote, Detail: detail})
}

// count adds one to remediation_steps_total once the transaction commits.
func (t *txn) count(run *store.Run, st *store.Step, result string) {
	policy, act := run.Policy, st.Action
	t.fx.add(func() { t.e.m.Steps.WithLabelValues(policy, act, result).Inc() })
}

// wake wakes the engine's loops once the transaction commits.
func (t *txn) wake() { t.fx.add(t.e.Wake) }

// runDetail is the audit detail common to a run's entries.
func runDetail(run *store.Run, extra ...string) map[string]string {
	d := map[string]string{"policy": run.Policy, "target": run.Target, "incident": run.IncidentID}
	for i := 0; i+1 < len(extra); i += 2 {
		d[extra[i]] = extra[i+1]
	}
	return d
}

// endRun moves an active run to a final state: steps that had not
// started get skipState (skipped, blocked, …), the (policy, target) guard
// is released, the incident's timeline says so, and the incident resolves
// if its alert has resolved and no other run is active. The caller writes
// run and inc.
func (t *txn) endRun(run *store.Run, inc *store.Incident, state, reason, skipState string) error {
	run.State = state
	if reason != "" {
		run.Reason = reason
	}
	run.UpdatedAt, run.EndedAt = t.now, t.now
	for i := range run.Steps {
		st := &run.Steps[i]
		if st.State == store.StepPending || st.State == store.StepAwaitingApproval {
			st.State = skipState
			if st.Reason == "" {
				st.Reason = "not run: " + reason
			}
		}
	}
	if err := t.releaseGuard(run); err != nil {
		return err
	}
	msg := fmt.Sprintf("run %s (%s on %q) ended %s", run.ID, run.Policy, run.Target, state)
	if reason != "" {
		msg += ": " + reason
	}
	t.event(inc, "run_ended", msg, run.ID, "")
	if err := t.audit(systemActor, "run."+state, run.ID, "", runDetail(run, "reason", reason)); err != nil {
		return err
	}
	log := t.e.log
	t.fx.add(func() {
		log.Info("run ended", "run", run.ID, "policy", run.Policy, "target", run.Target, "state", state, "reason", reason)
	})
	return t.maybeResolveIncident(inc, run.ID)
}

// releaseGuard clears the (policy, target) pair's active run if it is run.
func (t *txn) releaseGuard(run *store.Run) error {
	g, err := t.tx.Guard(guardKey(run.Policy, run.Target))
	if err != nil {
		return err
	}
	if g.ActiveRunID != run.ID {
		return nil
	}
	g.ActiveRunID = ""
	return t.tx.PutGuard(g)
}

// maybeResolveIncident resolves an open incident whose alert has resolved
// once none of its runs is active. except is a run the caller is ending
// (its journaled copy may still say active).
func (t *txn) maybeResolveIncident(inc *store.Incident, except string) error {
	if inc.State != store.IncidentOpen || inc.AlertStatus != string(detect.StatusResolved) {
		return nil
	}
	for _, id := range inc.RunIDs {
		if id == except {
			continue
		}
		r, err := t.tx.Run(id)
		if err != nil {
			return fmt.Errorf("run %s of incident %s: %w", id, inc.ID, err)
		}
		if r.Active() {
			return nil
		}
	}
	inc.State = store.IncidentResolved
	inc.ResolvedAt = t.now
	t.event(inc, "resolved", "incident resolved", "", "")
	service, scenario := inc.Labels[detect.LabelService], inc.Labels[detect.LabelScenario]
	t.fx.add(func() { t.e.m.IncidentsOpen.WithLabelValues(service, scenario).Dec() })
	if hook := t.e.onResolved; hook != nil {
		resolved := *inc
		t.fx.add(func() { hook(resolved) })
	}
	return t.audit(systemActor, "incident.resolved", inc.ID, "", nil)
}

// syncPendingGauge sets the pending-approvals gauge from the journal as
// this transaction leaves it.
func (t *txn) syncPendingGauge() error {
	list, err := pendingApprovals(t.tx)
	if err != nil {
		return err
	}
	n := float64(len(list))
	t.fx.add(func() { t.e.m.PendingApprovals.Set(n) })
	return nil
}

// pendingApprovals returns the pending approvals of active runs.
func pendingApprovals(tx *store.Tx) ([]store.Approval, error) {
	runs, err := tx.ActiveRuns()
	if err != nil {
		return nil, err
	}
	var out []store.Approval
	for _, r := range runs {
		if r.State != store.RunAwaitingApproval {
			continue
		}
		for _, st := range r.Steps {
			if st.State != store.StepAwaitingApproval || st.ApprovalID == "" {
				continue
			}
			a, err := tx.Approval(st.ApprovalID)
			if err != nil {
				return nil, fmt.Errorf("approval %s of run %s: %w", st.ApprovalID, r.ID, err)
			}
			if a.State == store.ApprovalPending {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// bound cuts s to at most n bytes, saying how much it dropped.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…[truncated %d bytes]", s[:n], len(s)-n)
}

// ago formats the time since t for reasons such as "last run 3m ago".
func ago(now, t time.Time) string {
	return fmtDuration(now.Sub(t))
}

// fmtDuration formats d the way configuration writes durations (30m, 1h).
func fmtDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return modelDuration(d.Round(time.Second))
}

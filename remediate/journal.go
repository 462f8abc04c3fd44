package remediate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// systemActor is the audit actor for what drguard does by itself; check
// refuses a user with this name.
const systemActor = config.SystemActor

// Bounds on what the journal keeps of a step's output and error.
const (
	maxJournalOutput = 64 << 10
	maxJournalError  = 4 << 10
)

// txn is one journal transaction with the engine's helpers: the clock of
// the transaction, the effects to apply after commit, timeline and audit.
type txn struct {
	e *Engine
	// tm is the term whose write this is; nil for a write any replica
	// makes.
	tm  *term
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

// audit appends an entry to the audit log; an empty actor is drguard.
func (t *txn) audit(actor, act, subject, remote string, detail map[string]string) error {
	if actor == "" {
		actor = systemActor
	}
	return t.tx.Audit(store.AuditEntry{Time: t.now, Actor: actor, Action: act, Subject: subject, Remote: remote, Detail: detail})
}

// count adds one to remediation_steps_total once the transaction commits.
func (t *txn) count(run *store.Run, st *store.Step, result string) {
	policy, act := run.Policy, st.Action
	t.fx.add(func() { t.e.m.Steps.WithLabelValues(policy, act, result).Inc() })
}

// enqueue queues a run for the workers of the transaction's term once the
// transaction commits.
func (t *txn) enqueue(runID string) {
	tm := t.tm
	if tm == nil {
		tm = t.e.term.Load()
	}
	if tm != nil {
		t.fx.add(func() { tm.queue.Add(runID) })
	}
}

// runDetail is the audit detail common to a run's entries, with extra
// key, value pairs; empty values are left out.
func runDetail(run *store.Run, extra ...string) map[string]string {
	d := map[string]string{"policy": run.Policy, "target": run.Target, "incident": run.IncidentID}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] != "" {
			d[extra[i]] = extra[i+1]
		}
	}
	return d
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
		st := awaitingStep(&r, "")
		if st == nil {
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
	return out, nil
}

// awaitingStep returns the step of run that waits for approval id (any
// approval when id is ""), or nil.
func awaitingStep(run *store.Run, id string) *store.Step {
	if run.State != store.RunAwaitingApproval {
		return nil
	}
	for i := range run.Steps {
		st := &run.Steps[i]
		if st.State == store.StepAwaitingApproval && st.ApprovalID != "" && (id == "" || st.ApprovalID == id) {
			return st
		}
	}
	return nil
}

// bound cuts s to at most n bytes, saying how much it dropped.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…[truncated %d bytes]", s[:n], len(s)-n)
}

// fmtDuration is FormatDuration, the engine's name for it.
func fmtDuration(d time.Duration) string { return FormatDuration(d) }

// FormatDuration writes d the way configuration writes durations (30m, 1h,
// 1d), to the second; durations under a second in milliseconds. Journal
// messages and post-mortems write durations with it.
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return model.Duration(d.Round(time.Second)).String()
}

// failureOf classifies a failed step's error for the journal (and its
// post-mortem): its verification failed, its action timed out, or ""
// (its action failed).
func failureOf(o *outcome) string {
	if o.failure == "" && errors.Is(o.err, action.ErrTimedOut) {
		return store.FailureTimedOut
	}
	return o.failure
}

// LabelText writes labels as name="value", sorted by name, as reports and
// post-mortems show them.
func LabelText(ls map[string]string) string {
	parts := make([]string, 0, len(ls))
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, ls[k]))
	}
	return strings.Join(parts, ", ")
}

package remediate

import (
	"fmt"
	"strconv"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// The engine's state machine. Runs, steps and approvals move only through
// moveRun, moveStep and moveApproval, and only along the edges of the
// tables below; docs/design.md draws them. An edge says what the move
// writes besides the new state: a timeline event on the incident, an
// audit entry, and a metric (steps: drguard_remediation_steps_total with
// the edge's result; runs and approvals: their own counters on every move
// to a final state). A move along no edge is refused with a
// *TransitionError, which fails the transaction and is journaled on its own
// (an audit entry transition.refused) by Engine.update.
//
// The empty state is an entity being created: a run being planned, its
// steps, a new approval. Moves of a run between its active states record
// nothing of their own: the step or approval move that causes them does.

// edge is one legal move and what it records.
type edge struct {
	// event is the timeline event kind; "" writes none.
	event string
	// audit is the audit action; "" writes none.
	audit string
	// says is what the event's message says happened.
	says string
	// result is the remediation_steps_total result a step's move counts
	// ("" counts nothing; resultOfGuardrail counts the guardrail's).
	result string
}

// resultOfGuardrail marks a step edge whose metric result is the blocking
// guardrail's (blocked_cooldown, blocked_budget, …).
const resultOfGuardrail = "guardrail"

// runEdges is every legal move of a run. A run's final states are those
// with no edge out: succeeded, failed, rejected, expired, obsolete,
// interrupted, dry_run and blocked.
var runEdges = map[store.RunState]map[store.RunState]edge{
	"": {
		store.RunPending: {event: "run_started", audit: "run.created", says: "planned"},
		store.RunBlocked: {event: "run_blocked", audit: "run.blocked", says: "blocked"},
		store.RunFailed:  {event: "run_failed", audit: "run.failed", says: "failed"},
		store.RunDryRun:  {event: "run_dry_run", audit: "run.dry_run", says: "was a dry run"},
	},
	store.RunPending: {
		store.RunRunning:          {},
		store.RunAwaitingApproval: {},
		store.RunFailed:           {event: "run_failed", audit: "run.failed", says: "ended failed"},
		store.RunBlocked:          {event: "run_blocked", audit: "run.blocked", says: "ended blocked"},
		store.RunObsolete:         {event: "run_obsolete", audit: "run.obsolete", says: "ended obsolete"},
	},
	store.RunRunning: {
		store.RunPending:          {}, // an idempotent step interrupted by a restart is retried
		store.RunAwaitingApproval: {},
		store.RunSucceeded:        {event: "run_succeeded", audit: "run.succeeded", says: "ended succeeded"},
		store.RunFailed:           {event: "run_failed", audit: "run.failed", says: "ended failed"},
		store.RunBlocked:          {event: "run_blocked", audit: "run.blocked", says: "ended blocked"},
		store.RunObsolete:         {event: "run_obsolete", audit: "run.obsolete", says: "ended obsolete"},
		store.RunInterrupted:      {event: "run_interrupted", audit: "run.interrupted", says: "ended interrupted"},
	},
	store.RunAwaitingApproval: {
		store.RunPending:  {},
		store.RunRejected: {event: "run_rejected", audit: "run.rejected", says: "ended rejected"},
		store.RunExpired:  {event: "run_expired", audit: "run.expired", says: "ended expired"},
		store.RunObsolete: {event: "run_obsolete", audit: "run.obsolete", says: "ended obsolete"},
	},
}

// stepEdges is every legal move of a step. Moves out of the empty state
// happen while a run is planned; the run's move records them.
var stepEdges = map[store.StepState]map[store.StepState]edge{
	"": {
		store.StepPending: {},
		store.StepBlocked: {result: resultOfGuardrail},
		store.StepFailed:  {result: metrics.ResultFailed}, // its parameters did not render
		store.StepSkipped: {},
		store.StepDryRun:  {result: metrics.ResultDryRun},
	},
	store.StepPending: {
		store.StepRunning:          {event: "step_started", audit: "step.started", says: "started"},
		store.StepAwaitingApproval: {}, // the approval's creation records it
		store.StepBlocked:          {event: "step_blocked", audit: "step.blocked", says: "blocked", result: resultOfGuardrail},
		store.StepFailed:           {event: "step_failed", audit: "step.failed", says: "not started", result: metrics.ResultFailed},
		store.StepSkipped:          {},
		store.StepObsolete:         {result: metrics.ResultObsolete},
	},
	store.StepAwaitingApproval: {
		store.StepPending:  {}, // approved: the approval's move records it
		store.StepRejected: {result: metrics.ResultRejected},
		store.StepExpired:  {result: metrics.ResultExpired},
		store.StepObsolete: {result: metrics.ResultObsolete},
	},
	store.StepRunning: {
		store.StepSucceeded:   {event: "step_succeeded", audit: "step.succeeded", says: "succeeded", result: metrics.ResultSucceeded},
		store.StepFailed:      {event: "step_failed", audit: "step.failed", says: "failed", result: metrics.ResultFailed},
		store.StepInterrupted: {event: "interrupted", audit: "step.interrupted", says: "was interrupted", result: metrics.ResultInterrupted},
		store.StepPending:     {event: "interrupted", audit: "step.interrupted", says: "was interrupted", result: metrics.ResultInterrupted},
	},
}

// approvalEdges is every legal move of an approval. A vote that does not
// yet complete an approval is not a move: the approval stays pending.
var approvalEdges = map[store.ApprovalState]map[store.ApprovalState]edge{
	"": {
		store.ApprovalPending: {event: "approval_requested", audit: "approval.requested", says: "requested"},
	},
	store.ApprovalPending: {
		store.ApprovalApproved: {event: "approved", audit: "approval.approved", says: "approved"},
		store.ApprovalRejected: {event: "rejected", audit: "approval.rejected", says: "rejected"},
		store.ApprovalExpired:  {event: "expired", audit: "approval.expired", says: "expired"},
		store.ApprovalObsolete: {event: "approval_obsolete", audit: "approval.obsolete", says: "is obsolete"},
	},
}

// TransitionError is a move the state machine refuses: it is not an edge
// of the entity's table. The transaction that attempted it fails, and the
// refusal is journaled.
type TransitionError struct {
	Entity string // run, step, approval
	ID     string // the run's or approval's ID; a step's is RUN/STEP
	From   string
	To     string
}

func (e *TransitionError) Error() string {
	from := e.From
	if from == "" {
		from = "(new)"
	}
	return fmt.Sprintf("illegal transition of %s %s from %s to %s", e.Entity, e.ID, from, e.To)
}

// lookup returns the edge from → to of table, or a TransitionError.
func lookup[S ~string](table map[S]map[S]edge, entity, id string, from, to S) (edge, error) {
	if e, ok := table[from][to]; ok {
		return e, nil
	}
	return edge{}, &TransitionError{Entity: entity, ID: id, From: string(from), To: string(to)}
}

// final reports whether no edge leaves state s of table.
func final[S ~string](table map[S]map[S]edge, s S) bool { return len(table[s]) == 0 }

// note is what a caller says about a move beyond its table edge.
type note struct {
	reason string
	// actor and remote are who made the move (audit); "" is drguard.
	actor, remote string
	// result is the guardrail's metric result for a move to blocked.
	result string
	// detail is extra audit detail, as key, value pairs.
	detail []string
}

// moveRun moves run to state to. Every move sets UpdatedAt; a move to a
// final state sets Reason and EndedAt, settles the steps that had not
// started (obsolete when the run is, skipped otherwise), releases the
// (policy, target) guard, counts the run and resolves the incident when
// its alert has resolved and no other run is active. The caller writes run
// and inc.
func (t *txn) moveRun(run *store.Run, inc *store.Incident, to store.RunState, n note) error {
	from := run.State
	if from == to {
		return nil
	}
	e, err := lookup(runEdges, "run", run.ID, from, to)
	if err != nil {
		return err
	}
	run.State, run.UpdatedAt = to, t.now
	switch active := (&store.Run{State: to}).Active(); {
	case from == "" && active:
		t.fx.add(t.e.m.RunsActive.Inc)
	case from != "" && !active:
		t.fx.add(t.e.m.RunsActive.Dec)
	}
	if final(runEdges, to) {
		run.EndedAt = t.now
		if n.reason != "" {
			run.Reason = n.reason
		}
		if err := t.settleSteps(run, inc, to); err != nil {
			return err
		}
		if err := t.releaseGuard(run); err != nil {
			return err
		}
		policy, result, log := run.Policy, string(to), t.e.log
		id, target, reason := run.ID, run.Target, n.reason
		t.fx.add(func() {
			t.e.m.Runs.WithLabelValues(policy, result).Inc()
			log.Info("run ended", "run", id, "policy", policy, "target", target, "state", result, "reason", reason)
		})
	}
	if e.event != "" {
		msg := fmt.Sprintf("run %s (%s on %q) %s", run.ID, run.Policy, run.Target, e.says)
		if from == "" && to == store.RunPending {
			msg += fmt.Sprintf(" with %d steps", len(run.Steps))
		}
		t.event(inc, e.event, withReason(msg, n.reason), run.ID, "")
	}
	if e.audit != "" {
		detail := runDetail(run, append([]string{"reason", n.reason}, n.detail...)...)
		if err := t.audit(n.actor, e.audit, run.ID, n.remote, detail); err != nil {
			return err
		}
	}
	if final(runEdges, to) {
		return t.maybeResolveIncident(inc, run.ID)
	}
	return nil
}

// settleSteps moves the steps of a run ending in state to that had not
// started: obsolete when the run is obsolete, else skipped. A step still
// awaiting approval must have been settled by the caller.
func (t *txn) settleSteps(run *store.Run, inc *store.Incident, to store.RunState) error {
	skip := store.StepSkipped
	if to == store.RunObsolete {
		skip = store.StepObsolete
	}
	for i := range run.Steps {
		st := &run.Steps[i]
		if st.State != store.StepPending && st.State != "" {
			continue
		}
		why := "not run: " + run.Reason
		if st.Reason != "" {
			why = st.Reason
		}
		if err := t.moveStep(run, inc, st, skip, note{reason: why}); err != nil {
			return err
		}
	}
	return nil
}

// moveStep moves step st of run to state to: a move to running counts an
// attempt and sets StartedAt; a move out of running sets EndedAt; every
// move sets Reason (to n.reason, which may be empty).
func (t *txn) moveStep(run *store.Run, inc *store.Incident, st *store.Step, to store.StepState, n note) error {
	from := st.State
	e, err := lookup(stepEdges, "step", run.ID+"/"+st.Name, from, to)
	if err != nil {
		return err
	}
	st.State, st.Reason = to, n.reason
	switch {
	case to == store.StepRunning:
		st.Attempts++
		st.StartedAt, st.EndedAt = t.now, time.Time{}
		n.detail = append(n.detail, "attempt", strconv.Itoa(st.Attempts))
	case from == store.StepRunning:
		st.EndedAt = t.now
	}
	if result := e.result; result != "" {
		if result == resultOfGuardrail {
			result = n.result
		}
		t.count(run, st, result)
	}
	if e.event != "" {
		msg := fmt.Sprintf("step %s (%s) %s", st.Name, st.Action, e.says)
		if to == store.StepRunning {
			msg += fmt.Sprintf(", attempt %d", st.Attempts)
		}
		t.event(inc, e.event, withReason(msg, n.reason), run.ID, st.Name)
	}
	if e.audit != "" {
		detail := runDetail(run, append([]string{"step", st.Name, "action", st.Action, "reason", n.reason}, n.detail...)...)
		return t.audit(n.actor, e.audit, run.ID, n.remote, detail)
	}
	return nil
}

// moveApproval moves approval a of step st to state to: a final move sets
// DecidedAt (and DecidedBy to drguard when no person decided) and counts
// the decision. The caller writes a.
func (t *txn) moveApproval(a *store.Approval, run *store.Run, inc *store.Incident, st *store.Step, to store.ApprovalState, n note) error {
	from := a.State
	e, err := lookup(approvalEdges, "approval", a.ID, from, to)
	if err != nil {
		return err
	}
	a.State = to
	if final(approvalEdges, to) {
		a.DecidedAt = t.now
		if a.DecidedBy == "" {
			a.DecidedBy = systemActor
		}
		result := string(to)
		t.fx.add(func() { t.e.m.Approvals.WithLabelValues(result).Inc() })
	}
	t.approvalsChanged = true
	msg := fmt.Sprintf("approval %s of step %s (%s) %s", a.ID, st.Name, st.Action, e.says)
	if n.actor != "" {
		msg = fmt.Sprintf("%s %s step %s (%s, %s)", n.actor, e.says, st.Name, st.Action, a.ID)
	}
	t.event(inc, e.event, withReason(msg, n.reason), run.ID, st.Name)
	detail := runDetail(run, append([]string{"run", run.ID, "step", st.Name, "reason", n.reason}, n.detail...)...)
	return t.audit(n.actor, e.audit, a.ID, n.remote, detail)
}

// withReason appends ": reason" to msg when there is a reason.
func withReason(msg, reason string) string {
	if reason == "" {
		return msg
	}
	return msg + ": " + reason
}

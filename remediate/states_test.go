package remediate

import (
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// TestTransitionTables drives every move between every two states of runs,
// steps and approvals (and out of the new state) through the engine's
// transition functions, in real journal transactions: the moves of the
// tables succeed, every other is refused with a *TransitionError that is
// journaled on its own. The states come from the store's lists, so a state
// added there is covered here without a change.
func TestTransitionTables(t *testing.T) {
	h := newHarness(t)
	h.cfg = defaultConfig()
	h.open()
	incident := func() *store.Incident {
		return &store.Incident{ID: "inc-1", State: store.IncidentOpen, AlertStatus: string(detect.StatusFiring)}
	}
	run := func(s store.RunState) *store.Run {
		return &store.Run{ID: "run-1", IncidentID: "inc-1", Policy: "p", Target: "db-1", State: s,
			Steps: []store.Step{{Name: "s", Action: "exec", State: store.StepPending}}}
	}
	approval := func(s store.ApprovalState) *store.Approval {
		return &store.Approval{ID: "apr-1", RunID: "run-1", State: s}
	}
	var legal, refused int
	check := func(entity, from, to string, allowed bool, move func(t *txn) error) {
		t.Helper()
		err := h.eng.record(move)
		var te *TransitionError
		switch {
		case allowed && err != nil:
			t.Errorf("%s %q → %q is in the table but failed: %v", entity, from, to, err)
		case allowed:
			legal++
		case !errors.As(err, &te) || te.Entity != entity || te.From != from || te.To != to:
			t.Errorf("%s %q → %q is not in the table: got %v, want a TransitionError", entity, from, to, err)
		default:
			refused++
		}
	}
	for _, from := range append([]store.RunState{""}, store.RunStates()...) {
		for _, to := range store.RunStates() {
			_, ok := runEdges[from][to]
			check("run", string(from), string(to), ok || from == to, func(t *txn) error {
				return t.moveRun(run(from), incident(), to, note{reason: "test"})
			})
		}
	}
	for _, from := range append([]store.StepState{""}, store.StepStates()...) {
		for _, to := range store.StepStates() {
			_, ok := stepEdges[from][to]
			check("step", string(from), string(to), ok, func(t *txn) error {
				r := run(store.RunRunning)
				r.Steps[0].State = from
				return t.moveStep(r, incident(), &r.Steps[0], to, note{reason: "test", result: "blocked_paused"})
			})
		}
	}
	for _, from := range append([]store.ApprovalState{""}, store.ApprovalStates()...) {
		for _, to := range store.ApprovalStates() {
			_, ok := approvalEdges[from][to]
			check("approval", string(from), string(to), ok, func(t *txn) error {
				r := run(store.RunAwaitingApproval)
				return t.moveApproval(approval(from), r, incident(), &r.Steps[0], to, note{reason: "test"})
			})
		}
	}
	t.Logf("%d legal moves made, %d illegal ones refused", legal, refused)
	if got := len(h.audits("transition.refused")); got != refused || refused == 0 {
		t.Errorf("%d refusals journaled, want %d (one per refused move)", got, refused)
	}
	if got := testutil.ToFloat64(h.m.TransitionsRefused); got != float64(refused) {
		t.Errorf("engine_transitions_refused_total = %v, want %d", got, refused)
	}
}

// TestTransitionTablesNameKnownStates checks that the tables speak only of
// states the store knows, and that every state is reachable: a state
// added to a table but not to the store's list (or the other way round)
// fails here.
func TestTransitionTablesNameKnownStates(t *testing.T) {
	checkTable(t, "run", runEdges, store.RunStates())
	checkTable(t, "step", stepEdges, store.StepStates())
	checkTable(t, "approval", approvalEdges, store.ApprovalStates())
}

func checkTable[S ~string](t *testing.T, entity string, table map[S]map[S]edge, states []S) {
	t.Helper()
	known := map[S]bool{"": true}
	for _, s := range states {
		known[s] = true
	}
	reached := map[S]bool{}
	for from, tos := range table {
		if !known[from] {
			t.Errorf("%s table: unknown state %q", entity, from)
		}
		for to := range tos {
			if !known[to] || to == "" {
				t.Errorf("%s table: %q → unknown state %q", entity, from, to)
			}
			reached[to] = true
		}
	}
	for _, s := range states {
		if !reached[s] {
			t.Errorf("%s state %q cannot be reached: no move leads to it", entity, s)
		}
	}
	if len(table[""]) == 0 {
		t.Errorf("%s table: nothing can be created", entity)
	}
}

// TestFinalStatesHaveNoWayOut checks what "final" means: no move leaves a
// run that is not active, and the final states are the ones the design
// names.
func TestFinalStatesHaveNoWayOut(t *testing.T) {
	var finals []store.RunState
	for _, s := range store.RunStates() {
		r := store.Run{State: s}
		if final(runEdges, s) == r.Active() {
			t.Errorf("run state %s: final=%v but Active()=%v", s, final(runEdges, s), r.Active())
		}
		if final(runEdges, s) {
			finals = append(finals, s)
		}
	}
	want := "[succeeded failed rejected expired obsolete interrupted dry_run blocked]"
	if got := fmt.Sprint(finals); got != want {
		t.Errorf("final run states %s, want %s", got, want)
	}
}

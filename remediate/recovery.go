package remediate

import (
	"fmt"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// recover settles what a crash (or shutdown) left mid-flight, then sets
// the gauges from the journal. A step journaled running was interrupted:
// it is retried when idempotent; otherwise its run ends interrupted, since
// nobody knows whether it took effect. Pending runs resume and runs
// waiting for approval keep waiting.
func (e *Engine) recover() error {
	err := e.update(func(t *txn) error {
		runs, err := t.tx.ActiveRuns()
		if err != nil {
			return err
		}
		for _, run := range runs {
			if err := t.recoverRun(&run); err != nil {
				return fmt.Errorf("run %s: %w", run.ID, err)
			}
		}
		t.approvalsChanged = true
		return nil
	})
	if err != nil {
		return err
	}
	return e.syncGauges()
}

func (t *txn) recoverRun(run *store.Run) error {
	var st *store.Step
	for i := range run.Steps {
		if run.Steps[i].State == store.StepRunning {
			st = &run.Steps[i]
			break
		}
	}
	if st == nil {
		return nil
	}
	inc, err := t.tx.Incident(run.IncidentID)
	if err != nil {
		return fmt.Errorf("incident %s: %w", run.IncidentID, err)
	}
	t.count(run, st, metrics.ResultInterrupted)
	run.UpdatedAt = t.now
	if st.Idempotent {
		st.State = store.StepPending
		st.Reason = fmt.Sprintf("interrupted by a restart during attempt %d; retrying (idempotent)", st.Attempts)
		run.State = store.RunPending
		t.event(&inc, "interrupted", fmt.Sprintf("step %s was interrupted by a restart; retrying it because it is idempotent", st.Name), run.ID, st.Name)
		if err := t.audit(systemActor, "step.interrupted", run.ID, "", runDetail(run, "step", st.Name, "attempt", fmt.Sprint(st.Attempts), "retry", "true")); err != nil {
			return err
		}
	} else {
		st.State, st.EndedAt = store.StepInterrupted, t.now
		st.Reason = "interrupted by a restart; not re-run because the step is not idempotent"
		t.event(&inc, "interrupted", fmt.Sprintf("step %s was interrupted by a restart and is not idempotent; a human must check it", st.Name), run.ID, st.Name)
		if err := t.audit(systemActor, "step.interrupted", run.ID, "", runDetail(run, "step", st.Name, "attempt", fmt.Sprint(st.Attempts), "retry", "false")); err != nil {
			return err
		}
		if err := t.endRun(run, &inc, store.RunInterrupted, fmt.Sprintf("step %s was interrupted by a restart", st.Name), store.StepSkipped); err != nil {
			return err
		}
	}
	t.fx.add(func() {
		t.e.log.Warn("step interrupted by restart", "run", run.ID, "step", st.Name, "idempotent", st.Idempotent)
	})
	if err := t.tx.PutRun(run); err != nil {
		return err
	}
	return t.tx.PutIncident(&inc)
}

// syncGauges sets incidents_open and paused from the journal, so they are
// right after a restart.
func (e *Engine) syncGauges() error {
	type key struct{ service, scenario string }
	open := map[key]float64{}
	var paused bool
	err := e.store.View(func(tx *store.Tx) error {
		s, err := tx.Settings()
		if err != nil {
			return err
		}
		paused = s.Paused
		return tx.ForEachIncident(func(in store.Incident) error {
			if in.State == store.IncidentOpen {
				open[key{in.Labels[detect.LabelService], in.Labels[detect.LabelScenario]}]++
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	e.m.IncidentsOpen.Reset()
	for k, n := range open {
		e.m.IncidentsOpen.WithLabelValues(k.service, k.scenario).Add(n) // Add: beyond the label cap several keys share "other"
	}
	if paused {
		e.m.Paused.Set(1)
	} else {
		e.m.Paused.Set(0)
	}
	return nil
}

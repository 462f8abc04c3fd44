package remediate

import (
	"fmt"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// recover settles what a crash, a shutdown or the end of a leadership term
// (on whichever replica) left mid-flight, then sets the gauges from the
// journal. Each term runs it first. A step journaled running was interrupted:
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

// recoverRun settles the step of run that a previous process left
// running.
func (t *txn) recoverRun(run *store.Run) error {
	st := nextStep(run)
	if st == nil || st.State != store.StepRunning {
		return nil
	}
	inc, err := t.tx.Incident(run.IncidentID)
	if err != nil {
		return fmt.Errorf("incident %s: %w", run.IncidentID, err)
	}
	attempt := []string{"attempt", fmt.Sprint(st.Attempts)}
	if st.Idempotent {
		why := fmt.Sprintf("interrupted by a restart or a change of leader during attempt %d; retrying it because it is idempotent", st.Attempts)
		if err := t.moveStep(run, &inc, st, store.StepPending, note{reason: why, detail: append(attempt, "retry", "true")}); err != nil {
			return err
		}
		if err := t.moveRun(run, &inc, store.RunPending, note{}); err != nil {
			return err
		}
	} else {
		why := "interrupted by a restart or a change of leader; not re-run because the step is not idempotent: a human must check it"
		if err := t.moveStep(run, &inc, st, store.StepInterrupted, note{reason: why, detail: append(attempt, "retry", "false")}); err != nil {
			return err
		}
		if err := t.moveRun(run, &inc, store.RunInterrupted, note{reason: fmt.Sprintf("step %s was interrupted by a restart or a change of leader", st.Name)}); err != nil {
			return err
		}
	}
	log, name, idempotent := t.e.log, st.Name, st.Idempotent
	t.fx.add(func() {
		log.Warn("step interrupted by restart", "run", run.ID, "step", name, "idempotent", idempotent)
	})
	if err := t.tx.PutRun(run); err != nil {
		return err
	}
	return t.tx.PutIncident(&inc)
}

// syncGauges sets incidents_open, runs_active and paused from the
// journal, so they are right after a restart.
func (e *Engine) syncGauges() error {
	type key struct{ service, scenario string }
	open := map[key]float64{}
	var paused bool
	var active float64
	err := e.store.View(func(tx *store.Tx) error {
		s, err := tx.Settings()
		if err != nil {
			return err
		}
		paused = s.Paused
		runs, err := tx.ActiveRuns()
		if err != nil {
			return err
		}
		active = float64(len(runs))
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
	e.m.RunsActive.Set(active)
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

package store

import (
	"errors"
	"testing"
	"time"
)

// TestDrillRecords: on both journals, drill runs get sequential IDs, are
// rewritten in place as they advance, are listed oldest first apart from
// the announcements that share their bucket, and an unknown or foreign ID
// is not found.
func TestDrillRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) { drillRecords(t, j.openT(t)) })
}

func drillRecords(t *testing.T, s *Store) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var first DrillRun
	err := s.Update(func(tx *Tx) error {
		first = DrillRun{Drill: "q1", State: DrillRunning, StartedAt: now, Log: []Event{{Time: now, Kind: "started"}}}
		if err := tx.PutDrillRun(&first); err != nil {
			return err
		}
		if err := tx.PutDrillRun(&DrillRun{Drill: "q2", State: DrillRunning, StartedAt: now}); err != nil {
			return err
		}
		return tx.PutDrillAnnouncement(DrillAnnouncement{Drill: "q1", DueAt: now, SentAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	first.State, first.RTO = DrillPassed, &DrillMeasure{Seconds: 12.5, ObjectiveSeconds: 14400, Within: true}
	first.Checklist = []DrillCheck{{Item: CheckFailoverWithinRTO, Status: CheckPass, Evidence: "12.5s"}}
	if err := s.Update(func(tx *Tx) error { return tx.PutDrillRun(&first) }); err != nil {
		t.Fatal(err)
	}
	var runs []DrillRun
	var ann, none DrillAnnouncement
	var got DrillRun
	var missing, foreign error
	err = s.View(func(tx *Tx) error {
		if err := tx.ForEachDrillRun(func(r DrillRun) error { runs = append(runs, r); return nil }); err != nil {
			return err
		}
		if ann, err = tx.DrillAnnouncement("q1"); err != nil {
			return err
		}
		if none, err = tx.DrillAnnouncement("q9"); err != nil {
			return err
		}
		got, err = tx.DrillRun(first.ID)
		_, missing = tx.DrillRun("drl-999999")
		_, foreign = tx.DrillRun("ann-q1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != "drl-000001" || runs[1].ID != "drl-000002" || runs[1].Drill != "q2" {
		t.Fatalf("drill runs = %+v", runs)
	}
	if !got.Passed() || got.Active() || got.RTO.Seconds != 12.5 || len(got.Checklist) != 1 || !got.StartedAt.Equal(now) {
		t.Errorf("drill run read back as %+v", got)
	}
	if !ann.DueAt.Equal(now) || none.Drill != "q9" || !none.SentAt.IsZero() {
		t.Errorf("announcements: %+v, %+v", ann, none)
	}
	if !errors.Is(missing, ErrNotFound) || !errors.Is(foreign, ErrNotFound) {
		t.Errorf("unknown drill run: %v; announcement key as a run ID: %v", missing, foreign)
	}
}

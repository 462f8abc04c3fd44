package backup

import (
	"context"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// TestSchedulerRunsDueWorkOnce starts the scheduler on an empty bucket: it
// takes a backup and runs the restore test at once, without waiting for a
// refresh of the catalog (an hour here). A restarted scheduler rebuilds
// its state from object storage and takes nothing that is not due.
func TestSchedulerRunsDueWorkOnce(t *testing.T) {
	e := newEnv(t, "")
	e.seed(e.source, time.Now())
	e.svc.refresh = time.Hour
	ctx, cancel := context.WithCancel(e.ctx())
	stopped := make(chan error, 1)
	go func() { stopped <- e.svc.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for {
		var tests int
		_ = e.journal.View(func(tx *store.Tx) error {
			return tx.ForEachRestoreTestRun(func(store.RestoreTestRun) error { tests++; return nil })
		})
		if tests > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no restore test within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	runs := func() (backups []store.BackupRun, tests []store.RestoreTestRun) {
		_ = e.journal.View(func(tx *store.Tx) error {
			_ = tx.ForEachBackupRun(func(r store.BackupRun) error { backups = append(backups, r); return nil })
			return tx.ForEachRestoreTestRun(func(r store.RestoreTestRun) error { tests = append(tests, r); return nil })
		})
		return
	}
	backups, tests := runs()
	if len(backups) != 1 || backups[0].Trigger != TriggerSchedule || backups[0].Result != store.BackupSucceeded {
		t.Errorf("backup runs = %+v", backups)
	}
	if len(tests) != 1 || tests[0].Result != store.BackupSucceeded || tests[0].BackupID != backups[0].BackupID {
		t.Errorf("restore tests = %+v", tests)
	}
	if got := gauge(t, e.metrics.ExpectedInterval.WithLabelValues("shop", "app-db")); got != 3600 {
		t.Errorf("backup_expected_interval_seconds = %v", got)
	}
	if got := gauge(t, e.objectives.RPOObjective.WithLabelValues("shop")); got != 3600 {
		t.Errorf("rpo_objective_seconds = %v", got)
	}

	e.svc = e.newService()
	e.svc.refresh = time.Hour
	ctx, cancel = context.WithTimeout(e.ctx(), time.Second)
	defer cancel()
	if err := e.svc.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if b, rt := runs(); len(b) != 1 || len(rt) != 1 {
		t.Errorf("after a restart the scheduler ran again: %d backups, %d restore tests", len(b), len(rt))
	}
	if _, ok := e.objectives.Exposure("shop", metrics.SourceBackup); !ok {
		t.Error("after a restart the verified backup is not a recovery point")
	}
}

package store

import (
	"testing"
	"time"
)

func TestBackupRecords(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	err = s.Update(func(tx *Tx) error {
		for i := 0; i < 3; i++ {
			if err := tx.PutBackupRun(&BackupRun{Backup: "b", Start: now, Result: BackupSucceeded}); err != nil {
				return err
			}
		}
		return tx.PutRestoreTestRun(&RestoreTestRun{Name: "r", Backup: "b", Result: BackupFailed, Error: "boom"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var runs []BackupRun
	var tests []RestoreTestRun
	err = s.View(func(tx *Tx) error {
		if err := tx.ForEachBackupRun(func(r BackupRun) error { runs = append(runs, r); return nil }); err != nil {
			return err
		}
		return tx.ForEachRestoreTestRun(func(r RestoreTestRun) error { tests = append(tests, r); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].ID != "bk-000001" || runs[2].ID != "bk-000003" {
		t.Errorf("backup runs = %+v", runs)
	}
	if len(tests) != 1 || tests[0].ID != "rt-000004" || tests[0].Error != "boom" {
		t.Errorf("restore tests = %+v", tests)
	}
}

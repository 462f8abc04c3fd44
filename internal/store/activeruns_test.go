package store

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

func activeIDs(t *testing.T, s *Store) []string {
	t.Helper()
	var ids []string
	err := s.View(func(tx *Tx) error {
		runs, err := tx.ActiveRuns()
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestActiveRunsIndexFollowsRunState(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	runs := []Run{{State: RunPending}, {State: RunAwaitingApproval}, {State: RunSucceeded}, {State: RunRunning}}
	err = s.Update(func(tx *Tx) error {
		for i := range runs {
			if err := tx.PutRun(&runs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := activeIDs(t, s); len(got) != 3 || got[0] != "run-000001" || got[1] != "run-000002" || got[2] != "run-000004" {
		t.Fatalf("active runs = %v", got)
	}
	runs[0].State = RunFailed
	if err := s.Update(func(tx *Tx) error { return tx.PutRun(&runs[0]) }); err != nil {
		t.Fatal(err)
	}
	if got := activeIDs(t, s); len(got) != 2 {
		t.Fatalf("after ending run 1: active runs = %v", got)
	}

	// A journal written before the index existed gets it rebuilt on Open.
	err = s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketActiveRuns) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := activeIDs(t, s); len(got) != 2 || got[0] != "run-000002" || got[1] != "run-000004" {
		t.Fatalf("after rebuild: active runs = %v", got)
	}
}

package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

func TestNewIncidentIDThenOnePut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		const key = "fp-1@2026-03-01T11:59:00Z"
		err := s.Update(func(tx *Tx) error {
			id, err := tx.NewIncidentID()
			if err != nil {
				return err
			}
			if id != "inc-000001" {
				t.Errorf("reserved ID = %q, want inc-000001", id)
			}
			// Reserving writes nothing: the incident appears when it is put.
			if _, err := tx.IncidentByKey(key); !errors.Is(err, ErrNotFound) {
				t.Errorf("IncidentByKey before the put: err = %v, want ErrNotFound", err)
			}
			in := Incident{ID: id, Key: key, State: IncidentOpen}
			if err := tx.PutIncident(&in); err != nil {
				return err
			}
			// A reservation consumes its ID.
			other := Incident{Key: "fp-2@2026-03-01T11:59:00Z"}
			if err := tx.PutIncident(&other); err != nil {
				return err
			}
			if other.ID != "inc-000002" {
				t.Errorf("next assigned ID = %q, want inc-000002", other.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// An update finds the key index as the first put left it.
		seen := time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)
		err = s.Update(func(tx *Tx) error {
			in, err := tx.IncidentByKey(key)
			if err != nil {
				return err
			}
			in.LastSeen, in.Repeats = seen, in.Repeats+1
			return tx.PutIncident(&in)
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(func(tx *Tx) error {
			in, err := tx.IncidentByKey(key)
			if err != nil {
				return err
			}
			if in.ID != "inc-000001" || in.Repeats != 1 || !in.LastSeen.Equal(seen) {
				t.Errorf("incident by key = %s repeats %d last seen %s, want inc-000001, 1, %s", in.ID, in.Repeats, in.LastSeen, seen)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

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

// putRuns writes new runs in one transaction, filling in their IDs.
func putRuns(t *testing.T, s *Store, runs []Run) {
	t.Helper()
	err := s.Update(func(tx *Tx) error {
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
}

func TestActiveRunsIndexFollowsRunState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		runs := []Run{{State: RunPending}, {State: RunAwaitingApproval}, {State: RunSucceeded}, {State: RunRunning}}
		putRuns(t, s, runs)
		if got, want := activeIDs(t, s), []string{"run-000001", "run-000002", "run-000004"}; !slices.Equal(got, want) {
			t.Fatalf("active runs = %v, want %v", got, want)
		}
		runs[0].State = RunFailed
		if err := s.Update(func(tx *Tx) error { return tx.PutRun(&runs[0]) }); err != nil {
			t.Fatal(err)
		}
		if got, want := activeIDs(t, s), []string{"run-000002", "run-000004"}; !slices.Equal(got, want) {
			t.Fatalf("after ending run 1: active runs = %v, want %v", got, want)
		}
	})
}

func TestBackupRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		now := time.Now().UTC()
		err := s.Update(func(tx *Tx) error {
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
		if len(runs) != 3 || runs[0].ID != "bk-000001" || runs[2].ID != "bk-000003" || !runs[0].Start.Equal(now) {
			t.Errorf("backup runs = %+v", runs)
		}
		if len(tests) != 1 || tests[0].ID != "rt-000004" || tests[0].Error != "boom" {
			t.Errorf("restore tests = %+v", tests)
		}
	})
}

// TestFailedUpdateWritesNothing checks that a transaction whose function
// fails leaves no record and consumes no sequence number.
func TestFailedUpdateWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		boom := errors.New("boom")
		err := s.Update(func(tx *Tx) error {
			if err := tx.PutRun(&Run{State: RunPending}); err != nil {
				return err
			}
			if err := tx.Audit(AuditEntry{Actor: "a", Action: "x"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update: %v, want boom", err)
		}
		r := Run{State: RunPending}
		if err := s.Update(func(tx *Tx) error { return tx.PutRun(&r) }); err != nil {
			t.Fatal(err)
		}
		if r.ID != "run-000001" {
			t.Errorf("first run after a rolled-back one got %s, want run-000001", r.ID)
		}
		if got := auditSeqs(t, s); len(got) != 0 {
			t.Errorf("audit after a rolled-back entry: %v", got)
		}
	})
}

func auditSeqs(t *testing.T, s *Store) []uint64 {
	t.Helper()
	var seqs []uint64
	err := s.View(func(tx *Tx) error {
		return tx.ForEachAudit(func(e AuditEntry) error { seqs = append(seqs, e.Seq); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// TestConcurrentWritersAreSerialised has many writers, spread over two
// replicas where the backend is shared, each read a counter and write it
// back incremented, with an audit entry: no increment is lost, and the
// audit log is one gapless sequence in commit order (what server-sent
// events resume from with Last-Event-ID).
func TestConcurrentWritersAreSerialised(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		stores := []*Store{j.openT(t)}
		if j.shared {
			stores = append(stores, j.openT(t))
		}
		const writers, each = 8, 10
		var eg errgroup.Group
		for w := range writers {
			eg.Go(func() error {
				s := stores[w%len(stores)]
				for range each {
					err := s.Update(func(tx *Tx) error {
						g, err := tx.Guard("p/t")
						if err != nil {
							return err
						}
						g.RunTimes = append(g.RunTimes, time.Now().UTC())
						if err := tx.PutGuard(g); err != nil {
							return err
						}
						return tx.Audit(AuditEntry{Actor: fmt.Sprint(w), Action: "count", Subject: fmt.Sprint(len(g.RunTimes))})
					})
					if err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err := eg.Wait(); err != nil {
			t.Fatal(err)
		}
		var g Guard
		var entries []AuditEntry
		err := stores[0].View(func(tx *Tx) error {
			var err error
			g, err = tx.Guard("p/t")
			if err != nil {
				return err
			}
			return tx.ForEachAudit(func(e AuditEntry) error { entries = append(entries, e); return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(g.RunTimes) != writers*each {
			t.Errorf("%d increments survived, want %d", len(g.RunTimes), writers*each)
		}
		for i, e := range entries {
			if e.Seq != uint64(i+1) || e.Subject != fmt.Sprint(i+1) {
				t.Fatalf("audit entry %d: seq %d subject %s, want seq and subject %d", i, e.Seq, e.Subject, i+1)
			}
		}
		if len(entries) != writers*each {
			t.Errorf("%d audit entries, want %d", len(entries), writers*each)
		}
	})
}

// TestScansCrossPages reads buckets larger than the PostgreSQL journal's
// scan page, forwards with a prefix and backwards from a bound: every
// record comes once, in order.
func TestScansCrossPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		const n = 2*scanPage + 34
		err := s.Update(func(tx *Tx) error {
			for range n {
				if err := tx.PutIncident(&Incident{State: IncidentOpen}); err != nil {
					return err
				}
				if err := tx.PutBackupRun(&BackupRun{Backup: "b"}); err != nil {
					return err
				}
			}
			return tx.PutRestoreTestRun(&RestoreTestRun{Name: "r"})
		})
		if err != nil {
			t.Fatal(err)
		}
		var backups []string
		var incidents []string
		err = s.View(func(tx *Tx) error {
			if err := tx.ForEachBackupRun(func(r BackupRun) error { backups = append(backups, r.ID); return nil }); err != nil {
				return err
			}
			return tx.IncidentsBefore(fmt.Sprintf("inc-%06d", n), func(in Incident) (bool, error) {
				incidents = append(incidents, in.ID)
				return true, nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(backups) != n || backups[0] != "bk-000001" || backups[n-1] != fmt.Sprintf("bk-%06d", n) || !slices.IsSorted(backups) {
			t.Errorf("%d backup runs from %s to %s, want %d in order", len(backups), backups[0], backups[len(backups)-1], n)
		}
		if len(incidents) != n-1 || incidents[0] != fmt.Sprintf("inc-%06d", n-1) || incidents[n-2] != "inc-000001" {
			t.Errorf("%d incidents before the newest, from %s to %s", len(incidents), incidents[0], incidents[len(incidents)-1])
		}
	})
}

package store

import (
	"context"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Tests of the embedded journal's own files: its bbolt pages and indexes.

func TestActiveRunsIndexIsRebuiltOnOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	putRuns(t, s, []Run{{State: RunPending}, {State: RunSucceeded}, {State: RunRunning}})
	// A journal written before the index existed gets it rebuilt on Open.
	err = boltOf(s).db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketActiveRuns) })
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
	if got, want := activeIDs(t, s), []string{"run-000001", "run-000003"}; !slices.Equal(got, want) {
		t.Fatalf("after rebuild: active runs = %v, want %v", got, want)
	}
}

func TestAppendOnlyBucketsArePackedFull(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Update(func(tx *Tx) error {
		for range 2000 {
			if err := tx.Audit(AuditEntry{Actor: "drguard", Action: "incident.opened", Subject: "inc-000001",
				Detail: map[string]string{"key": "fp-1@2026-03-01T11:59:00Z", "source": "alertmanager"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = boltOf(s).db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketAudit).Stats()
		// bbolt's default split leaves appended pages half full.
		if fill := float64(st.LeafInuse) / float64(st.LeafAlloc); fill < 0.8 {
			t.Errorf("audit leaf pages %.0f%% full (%d pages), want at least 80%%", 100*fill, st.LeafPageN)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOutboxSegmentsAreTrimmed checks that the intake log's segments whose
// alerts are all acknowledged are deleted.
func TestOutboxSegmentsAreTrimmed(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boltOf(s).outbox.segmentSize = 1 // a segment per commit
	enqueue(t, s, "a", "b", "c")
	pending, _ := s.PendingAlerts(2)
	err = s.Update(func(tx *Tx) error {
		for _, a := range pending {
			if err := tx.AckAlert(a.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.TrimOutbox(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Left: the segment holding c and the empty one being appended to.
	if names := segmentFiles(t, dir); len(names) != 2 || names[0] != segmentName(3) {
		t.Fatalf("outbox segments after trimming: %v, want %s and the next", names, segmentName(3))
	}
}

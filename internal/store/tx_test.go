package store

import (
	"errors"
	"testing"
	"time"
)

func TestNewIncidentIDThenOnePut(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const key = "fp-1@2026-03-01T11:59:00Z"
	err = s.Update(func(tx *Tx) error {
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
	err = s.View(func(tx *Tx) error {
		st := tx.tx.Bucket(bucketAudit).Stats()
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

package store

import (
	"context"
	"testing"
)

// TestDeadLetterKeepsTheAlertAndUnblocksTheOutbox checks that an alert
// moved to the dead-letter bucket leaves the outbox but stays journaled.
func TestDeadLetterKeepsTheAlertAndUnblocksTheOutbox(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.EnqueueAlerts(context.Background(), []Alert{{Fingerprint: "bad"}, {Fingerprint: "good"}}); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingAlerts(0)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending %v, %v", pending, err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.DeadLetter(pending[0].Seq, "cannot process") }); err != nil {
		t.Fatal(err)
	}
	pending, _ = s.PendingAlerts(0)
	if len(pending) != 1 || pending[0].Fingerprint != "good" {
		t.Fatalf("outbox after dead-lettering: %+v", pending)
	}
	_ = s.View(func(tx *Tx) error {
		if n := tx.DeadLetters(); n != 1 {
			t.Errorf("%d dead letters, want 1", n)
		}
		return nil
	})
	if err := s.Update(func(tx *Tx) error { return tx.DeadLetter(999, "x") }); err != ErrNotFound {
		t.Errorf("dead-lettering a missing alert: %v, want ErrNotFound", err)
	}
}

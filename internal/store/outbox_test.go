package store

import (
	"context"
	"testing"
	"time"
)

// TestOutboxWatermarkSurvivesReopenAndTrims checks that acknowledged alerts
// are never handed out again, across a reopen, and that trimming removes
// them from the outbox file.
func TestOutboxWatermarkSurvivesReopenAndTrims(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.outbox.segmentSize = 1 // a segment per commit
	for _, fp := range []string{"a", "b", "c"} {
		if err := s.EnqueueAlerts(ctx, []Alert{{Fingerprint: fp}}); err != nil {
			t.Fatal(err)
		}
	}
	pending, _ := s.PendingAlerts(2)
	if len(pending) != 2 || pending[0].Fingerprint != "a" || pending[1].Seq != pending[0].Seq+1 {
		t.Fatalf("first two pending: %+v", pending)
	}
	err = s.Update(func(tx *Tx) error {
		for _, a := range pending {
			if err := tx.AckAlert(a.Seq); err != nil {
				return err
			}
		}
		return tx.AckAlert(pending[0].Seq) // a repeat is harmless
	})
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
	pending, _ = s.PendingAlerts(0)
	if len(pending) != 1 || pending[0].Fingerprint != "c" {
		t.Fatalf("after reopen: %+v, want only c", pending)
	}
	if err := s.TrimOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	// Left: the segment holding c and the empty one being appended to.
	if names := segmentFiles(t, dir); len(names) != 2 || names[0] != segmentName(pending[0].Seq) {
		t.Fatalf("outbox segments after trimming: %v, want %s and the next", names, segmentName(pending[0].Seq))
	}
}

// TestEnqueueAfterCloseFailsPromptly checks that a webhook arriving while
// the journal closes is refused (so intake answers 503), never left waiting.
func TestEnqueueAfterCloseFailsPromptly(t *testing.T) {
	for i := 0; i < 200; i++ {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.EnqueueAlerts(context.Background(), []Alert{{Fingerprint: "late"}}) }()
		select {
		case err := <-done:
			if err != ErrClosed {
				t.Fatalf("enqueue after close: %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("enqueue after close never returned")
		}
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// TestAcknowledgedAlertsStayProcessed checks that acknowledged alerts are
// never handed out again, across a reopen, and that a second transaction
// acknowledging the same alert (a second processor) is refused.
func TestAcknowledgedAlertsStayProcessed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.open(t)
		enqueue(t, s, "a", "b", "c")
		pending, _ := s.PendingAlerts(2)
		if len(pending) != 2 || pending[0].Fingerprint != "a" || pending[1].Seq <= pending[0].Seq {
			t.Fatalf("first two pending: %+v", pending)
		}
		err := s.Update(func(tx *Tx) error {
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
		err = s.Update(func(tx *Tx) error { return tx.AckAlert(pending[1].Seq) })
		if !errors.Is(err, ErrAlreadyAcked) {
			t.Fatalf("acknowledging a processed alert again: %v, want ErrAlreadyAcked", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = j.openT(t)
		if got, want := pendingFingerprints(t, s), []string{"c@03"}; !slices.Equal(got, want) {
			t.Fatalf("after reopen: %v, want %v", got, want)
		}
		if err := s.TrimOutbox(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestGroupCommitKeepsEveryAlert has many webhooks enqueue at once: every
// alert is pending afterwards, once, and each webhook's alerts keep their
// order.
func TestGroupCommitKeepsEveryAlert(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		const hooks, per = 64, 5
		var g errgroup.Group
		for h := range hooks {
			g.Go(func() error {
				batch := make([]Alert, per)
				for i := range batch {
					batch[i] = Alert{Fingerprint: fmt.Sprintf("%02d-%d", h, i), Status: "firing", Labels: map[string]string{"n": fmt.Sprint(i)}}
				}
				return s.EnqueueAlerts(context.Background(), batch)
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		pending, err := s.PendingAlerts(0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != hooks*per {
			t.Fatalf("%d alerts pending, want %d", len(pending), hooks*per)
		}
		next := map[string]int{} // per webhook, the index of its next alert
		for i, a := range pending {
			if i > 0 && a.Seq <= pending[i-1].Seq {
				t.Fatalf("alert %d has seq %d after %d", i, a.Seq, pending[i-1].Seq)
			}
			var h, n int
			if _, err := fmt.Sscanf(a.Fingerprint, "%d-%d", &h, &n); err != nil || a.Labels["n"] != fmt.Sprint(n) {
				t.Fatalf("alert %+v came back changed", a)
			}
			if key := fmt.Sprint(h); next[key] != n {
				t.Fatalf("webhook %d: alert %d arrived when %d was due", h, n, next[key])
			} else {
				next[key]++
			}
		}
	})
}

// TestDeadLetterKeepsTheAlertAndUnblocksTheOutbox checks that an alert
// moved to the dead-letter bucket leaves the outbox but stays journaled.
func TestDeadLetterKeepsTheAlertAndUnblocksTheOutbox(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
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
		for _, seq := range []uint64{999, pending[0].Seq - 1} {
			if err := s.Update(func(tx *Tx) error { return tx.DeadLetter(seq, "x") }); !errors.Is(err, ErrNotFound) {
				t.Errorf("dead-lettering alert %d, missing or processed: %v, want ErrNotFound", seq, err)
			}
		}
	})
}

// TestEnqueueAfterCloseFailsPromptly checks that a webhook arriving while
// the journal closes is refused (so intake answers 503), never left waiting.
func TestEnqueueAfterCloseFailsPromptly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		rounds := 200
		if j.shared {
			rounds = 20 // each open of the PostgreSQL journal connects and checks the schema
		}
		for range rounds {
			s := j.open(t)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.EnqueueAlerts(context.Background(), []Alert{{Fingerprint: "late"}}) }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("enqueue after close: %v, want ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("enqueue after close never returned")
			}
		}
	})
}

package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// leaseTTL is the shortest ttl the store accepts, to keep the tests short.
const leaseTTL = time.Second

// fencedRun writes one run fenced by l and returns the error.
func fencedRun(s *Store, l Lease) error {
	return s.UpdateFenced(l, func(tx *Tx) error { return tx.PutRun(&Run{State: RunPending, Policy: l.Holder}) })
}

// runPolicies lists who wrote each run, in ID order.
func runPolicies(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := s.View(func(tx *Tx) error {
		return tx.ForEachRun(func(r Run) error { out = append(out, r.ID+":"+r.Policy); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitAcquire retries AcquireLease until it succeeds or 10 s pass.
func waitAcquire(t *testing.T, s *Store, holder string) Lease {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := s.AcquireLease(context.Background(), LeaderLease, holder, leaseTTL)
		if err == nil {
			return l
		}
		if !errors.Is(err, ErrLeaseHeld) || time.Now().After(deadline) {
			t.Fatalf("%s: acquire: %v", holder, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLeaseExactlyOneOfContendersWins has holders on two replicas race for
// a free lease: exactly one gets it, the others are told who holds it.
func TestLeaseExactlyOneOfContendersWins(t *testing.T) {
	j := postgresJournal(t)
	replicas := []*Store{j.openT(t), j.openT(t)}
	const holders = 8
	var wg sync.WaitGroup
	results := make([]error, holders)
	leases := make([]Lease, holders)
	for i := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leases[i], results[i] = replicas[i%2].AcquireLease(context.Background(), LeaderLease, fmt.Sprintf("h%d", i), time.Minute)
		}()
	}
	wg.Wait()
	winners := 0
	for i, err := range results {
		switch {
		case err == nil:
			winners++
			if leases[i].Epoch != 1 || leases[i].Holder != fmt.Sprintf("h%d", i) {
				t.Errorf("winner's lease %+v, want epoch 1", leases[i])
			}
		case !errors.Is(err, ErrLeaseHeld):
			t.Errorf("h%d: %v, want ErrLeaseHeld", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d holders won the lease, want exactly 1", winners)
	}
}

// TestLeaseTakeoverFencesTheOldHolder walks a lease through a leader
// change: after expiry another holder takes over with a higher epoch, the
// old holder's fenced write fails with ErrFenced and writes nothing, and
// its renewal fails.
func TestLeaseTakeoverFencesTheOldHolder(t *testing.T) {
	j := postgresJournal(t)
	a, b := j.openT(t), j.openT(t)
	ctx := context.Background()
	la, err := a.AcquireLease(ctx, LeaderLease, "a", leaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	if !la.Deadline.After(time.Now()) || la.Deadline.After(time.Now().Add(leaseTTL)) || la.Expires.IsZero() {
		t.Errorf("lease deadline %s, expiry %s: want within the ttl from now", la.Deadline, la.Expires)
	}
	if _, err := b.AcquireLease(ctx, LeaderLease, "b", leaseTTL); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("b acquires a live lease: %v, want ErrLeaseHeld", err)
	}
	if err := fencedRun(a, la); err != nil {
		t.Fatalf("the holder's fenced write: %v", err)
	}
	if la, err = a.RenewLease(ctx, la, leaseTTL); err != nil {
		t.Fatalf("renew: %v", err)
	}

	lb := waitAcquire(t, b, "b") // a stops renewing: b takes over after the ttl
	if lb.Epoch <= la.Epoch {
		t.Fatalf("takeover epoch %d, want more than %d", lb.Epoch, la.Epoch)
	}
	if err := fencedRun(a, la); !errors.Is(err, ErrFenced) {
		t.Fatalf("the deposed holder's fenced write: %v, want ErrFenced", err)
	}
	if _, err := a.RenewLease(ctx, la, leaseTTL); !errors.Is(err, ErrFenced) {
		t.Fatalf("the deposed holder's renewal: %v, want ErrFenced", err)
	}
	if err := a.ReleaseLease(ctx, la); err != nil {
		t.Fatalf("releasing a lost lease: %v", err)
	}
	if err := fencedRun(b, lb); err != nil {
		t.Fatalf("the new holder's fenced write: %v", err)
	}
	// The refused write left nothing, not even a consumed run ID.
	if got, want := runPolicies(t, b), []string{"run-000001:a", "run-000002:b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("runs %v, want %v", got, want)
	}

	// A release hands the lease over at once.
	if err := b.ReleaseLease(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if err := fencedRun(b, lb); !errors.Is(err, ErrFenced) {
		t.Fatalf("a fenced write after release: %v, want ErrFenced", err)
	}
	lc, err := a.AcquireLease(ctx, LeaderLease, "c", leaseTTL)
	if err != nil || lc.Epoch != lb.Epoch+1 {
		t.Fatalf("acquire after release: %+v, %v; want epoch %d", lc, err, lb.Epoch+1)
	}
}

// TestLeaseExpiredButNotTakenOver checks that a holder whose lease expired
// may not write fenced until it renews, which it may while nobody took the
// lease over.
func TestLeaseExpiredButNotTakenOver(t *testing.T) {
	j := postgresJournal(t)
	s := j.openT(t)
	ctx := context.Background()
	l, err := s.AcquireLease(ctx, LeaderLease, "a", leaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(leaseTTL + 100*time.Millisecond)
	if err := fencedRun(s, l); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced write on an expired lease: %v, want ErrFenced", err)
	}
	if l, err = s.RenewLease(ctx, l, leaseTTL); err != nil {
		t.Fatalf("renewing an expired lease nobody took: %v", err)
	}
	if err := fencedRun(s, l); err != nil {
		t.Fatalf("fenced write after renewal: %v", err)
	}
}

// TestTakeoverWaitsForAFencedWriteInProgress checks that no write fenced by
// an old epoch commits after a newer epoch exists: a takeover that comes
// while the old holder's fenced transaction runs waits for its commit.
func TestTakeoverWaitsForAFencedWriteInProgress(t *testing.T) {
	j := postgresJournal(t)
	a, b := j.openT(t), j.openT(t)
	la, err := a.AcquireLease(context.Background(), LeaderLease, "a", leaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	inside, finish := make(chan struct{}), make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		wrote <- a.UpdateFenced(la, func(tx *Tx) error {
			close(inside)
			<-finish
			return tx.PutRun(&Run{State: RunPending, Policy: "a"})
		})
	}()
	<-inside
	time.Sleep(leaseTTL + 100*time.Millisecond) // the lease expires while a writes
	type result struct {
		l   Lease
		err error
	}
	took := make(chan result, 1)
	go func() {
		l, err := b.AcquireLease(context.Background(), LeaderLease, "b", leaseTTL)
		took <- result{l, err}
	}()
	select {
	case r := <-took:
		t.Fatalf("b's takeover returned (%+v, %v) while a's fenced write was open", r.l, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	close(finish)
	if err := <-wrote; err != nil {
		t.Fatalf("a's fenced write, checked before its lease expired: %v", err)
	}
	if r := <-took; r.err != nil || r.l.Epoch != la.Epoch+1 {
		t.Fatalf("takeover: %+v, %v; want epoch %d", r.l, r.err, la.Epoch+1)
	}
	if err := fencedRun(a, la); !errors.Is(err, ErrFenced) {
		t.Fatalf("a's next fenced write: %v, want ErrFenced", err)
	}
}

// TestEmbeddedLeaseIsAlwaysHeld checks the embedded journal's lease: one
// process behind a file lock is always the leader, at a constant epoch.
func TestEmbeddedLeaseIsAlwaysHeld(t *testing.T) {
	s := embeddedJournal(t).openT(t)
	ctx := context.Background()
	l, err := s.AcquireLease(ctx, LeaderLease, "a", leaseTTL)
	if err != nil || l.Epoch != embeddedEpoch {
		t.Fatalf("acquire: %+v, %v", l, err)
	}
	if l, err = s.RenewLease(ctx, l, leaseTTL); err != nil || l.Epoch != embeddedEpoch {
		t.Fatalf("renew: %+v, %v", l, err)
	}
	if err := fencedRun(s, l); err != nil {
		t.Fatalf("fenced write: %v", err)
	}
	if err := s.ReleaseLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, LeaderLease, "", leaseTTL); err == nil {
		t.Fatal("a lease without a holder was granted")
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrFenced is returned by UpdateFenced and RenewLease when the lease no
// longer holds the caller's epoch: another holder took it over, or it
// expired. The caller is no longer the leader and must stop acting.
var ErrFenced = errors.New("lease lost: fenced by a newer epoch")

// ErrLeaseHeld is returned by AcquireLease while another holder's lease
// has not expired.
var ErrLeaseHeld = errors.New("lease held by another holder")

// LeaderLease is the name of the lease that elects drguard's leader.
const LeaderLease = "leader"

// Lease is a lease as its holder got it from AcquireLease or RenewLease.
type Lease struct {
	// Name identifies the lease, e.g. LeaderLease.
	Name string
	// Holder identifies the holding process; it must be unique per
	// process (host name, process ID and a random suffix), so that a
	// restarted process does not mistake its predecessor's lease for its
	// own.
	Holder string
	// Epoch increases by one on every acquisition; writes fenced by an
	// older epoch are refused.
	Epoch uint64
	// Expires is when the lease expires by the journal database's clock.
	Expires time.Time
	// Deadline is when the holder must stop acting unless it has renewed
	// the lease: its own clock's reading before the request was sent, plus
	// the ttl. It never falls after the lease's real expiry, whatever the
	// offset between the two clocks.
	Deadline time.Time
}

// AcquireLease takes the lease called name for holder for ttl when it is
// free, expired, or already the holder's, incrementing its epoch. While
// another holder's lease is live it fails with ErrLeaseHeld.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	if err := checkLeaseArgs(name, holder, ttl); err != nil {
		return Lease{}, err
	}
	if s.closed() {
		return Lease{}, ErrClosed
	}
	sent := time.Now()
	l, err := s.b.acquireLease(ctx, name, holder, ttl)
	if err != nil {
		return Lease{}, err
	}
	l.Deadline = sent.Add(ttl)
	return l, nil
}

// RenewLease extends a held lease by ttl from now. It fails with ErrFenced
// when the lease was taken over since; on any error it returns l as it was,
// whose Deadline still stands.
func (s *Store) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := checkLeaseArgs(l.Name, l.Holder, ttl); err != nil {
		return Lease{}, err
	}
	if s.closed() {
		return Lease{}, ErrClosed
	}
	sent := time.Now()
	renewed, err := s.b.renewLease(ctx, l, ttl)
	if err != nil {
		return l, err
	}
	renewed.Deadline = sent.Add(ttl)
	return renewed, nil
}

// ReleaseLease gives a held lease up, so that another replica can take it
// over at once instead of after the ttl. Releasing a lease that was taken
// over already is not an error.
func (s *Store) ReleaseLease(ctx context.Context, l Lease) error {
	if s.closed() {
		return ErrClosed
	}
	return s.b.releaseLease(ctx, l)
}

// UpdateFenced is Update for the leader's writes: inside the transaction,
// before fn runs, it checks that the lease l still holds l's epoch and has
// not expired, and fails with ErrFenced, writing nothing, otherwise. A
// takeover waits for a fenced transaction in progress, so no write fenced
// by an old epoch commits after a newer epoch exists. Keep fenced
// transactions short beside the ttl: a renewal of the same lease waits for
// them too.
func (s *Store) UpdateFenced(l Lease, fn func(*Tx) error) error {
	return s.update(&l, fn)
}

func checkLeaseArgs(name, holder string, ttl time.Duration) error {
	if name == "" || holder == "" {
		return errors.New("lease: name and holder are required")
	}
	if ttl < time.Second {
		return fmt.Errorf("lease: ttl %s is shorter than 1s", ttl)
	}
	return nil
}

// The embedded journal's lease: bbolt's file lock already makes this
// process the only one that can write, so the lease is always held and
// never changes epoch.

// embeddedEpoch is the constant epoch of the embedded journal's lease.
const embeddedEpoch = 1

func (b *boltBackend) acquireLease(_ context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	return Lease{Name: name, Holder: holder, Epoch: embeddedEpoch, Expires: time.Now().Add(ttl)}, nil
}

func (b *boltBackend) renewLease(_ context.Context, l Lease, ttl time.Duration) (Lease, error) {
	l.Expires = time.Now().Add(ttl)
	return l, nil
}

func (b *boltBackend) releaseLease(context.Context, Lease) error { return nil }

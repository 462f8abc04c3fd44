package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The lease's statements compare with clock_timestamp(), the database's
// clock when the statement runs (now() would be the transaction's start),
// so that replicas whose clocks disagree still agree on expiry.

// acquireLease inserts the lease, or takes it over when it has expired or
// is the holder's own; the row lock of ON CONFLICT DO UPDATE makes exactly
// one of several contenders win.
func (b *pgBackend) acquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	l := Lease{Name: name, Holder: holder}
	err := b.pool.QueryRow(ctx, `INSERT INTO journal_leases AS l (name, holder, epoch, acquired_at, renewed_at, expires_at)
		VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp(), clock_timestamp() + $3 * interval '1 second')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = l.epoch + 1,
			acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
		WHERE l.expires_at <= clock_timestamp() OR l.holder = excluded.holder
		RETURNING epoch, expires_at`, name, holder, ttl.Seconds()).Scan(&l.Epoch, &l.Expires)
	if !errors.Is(err, pgx.ErrNoRows) {
		return l, leaseErr(err)
	}
	var other string
	var until time.Time
	if err := b.pool.QueryRow(ctx, "SELECT holder, expires_at FROM journal_leases WHERE name = $1", name).Scan(&other, &until); err != nil {
		return Lease{}, leaseErr(err)
	}
	return Lease{}, fmt.Errorf("%w: %q holds lease %q until %s", ErrLeaseHeld, other, name, until.UTC().Format(time.RFC3339Nano))
}

// renewLease extends the lease if it still has this holder and epoch.
func (b *pgBackend) renewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	err := b.pool.QueryRow(ctx, `UPDATE journal_leases
		SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $4 * interval '1 second'
		WHERE name = $1 AND holder = $2 AND epoch = $3 RETURNING expires_at`,
		l.Name, l.Holder, int64(l.Epoch), ttl.Seconds()).Scan(&l.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("%w: lease %q was taken over after epoch %d", ErrFenced, l.Name, l.Epoch)
	}
	return l, leaseErr(err)
}

// releaseLease expires the lease now if it still has this holder and epoch.
func (b *pgBackend) releaseLease(ctx context.Context, l Lease) error {
	_, err := b.pool.Exec(ctx, `UPDATE journal_leases SET expires_at = clock_timestamp()
		WHERE name = $1 AND holder = $2 AND epoch = $3`, l.Name, l.Holder, int64(l.Epoch))
	return leaseErr(err)
}

// checkFence fails with ErrFenced unless the lease still has the fence's
// holder and epoch and has not expired. FOR SHARE holds off a takeover
// (an UPDATE of the row) until this transaction ends, so that nothing it
// writes commits after a newer epoch exists.
func checkFence(ctx context.Context, tx pgx.Tx, l Lease) error {
	var holder string
	var epoch int64
	var live bool
	err := tx.QueryRow(ctx, "SELECT holder, epoch, expires_at > clock_timestamp() FROM journal_leases WHERE name = $1 FOR SHARE",
		l.Name).Scan(&holder, &epoch, &live)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: lease %q does not exist", ErrFenced, l.Name)
	case err != nil:
		return fmt.Errorf("postgres journal: check the lease: %w", err)
	case holder != l.Holder || uint64(epoch) != l.Epoch:
		return fmt.Errorf("%w: lease %q is at epoch %d, this holder's was %d", ErrFenced, l.Name, epoch, l.Epoch)
	case !live:
		return fmt.Errorf("%w: lease %q (epoch %d) has expired", ErrFenced, l.Name, epoch)
	}
	return nil
}

func leaseErr(err error) error {
	if err != nil {
		return fmt.Errorf("postgres journal: lease: %w", err)
	}
	return nil
}

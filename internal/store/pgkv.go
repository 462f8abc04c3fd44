package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgKV is a PostgreSQL journal transaction. A writing transaction holds
// the journal's writer lock, so nothing but itself changes the records
// while it runs: it keeps what it read and wrote by key, reads each record
// from the database at most once, numbers sequences in memory, and sends
// its writes as one pipelined batch before it commits (or before a scan
// or count, which read the table). An engine transaction that opens
// hundreds of incidents thus costs a round trip per record it reads, not
// one per statement.
type pgKV struct {
	ctx context.Context
	tx  pgx.Tx
	// records are the records this transaction read or wrote: a nil
	// value is a record known not to exist.
	records map[recordKey][]byte
	// writes are the writes not sent yet, in order.
	writes pgx.Batch
	// seqs are the sequences this transaction moved, by bucket.
	seqs map[string]uint64
	// acked are the outbox alerts this transaction acknowledged.
	acked map[uint64]bool
}

type recordKey struct{ bucket, key string }

func newPGKV(ctx context.Context, tx pgx.Tx) *pgKV {
	return &pgKV{ctx: ctx, tx: tx, records: map[recordKey][]byte{}, seqs: map[string]uint64{}, acked: map[uint64]bool{}}
}

func (k *pgKV) get(bucket, key []byte) ([]byte, error) {
	rk := recordKey{string(bucket), string(key)}
	v, known := k.records[rk]
	if !known {
		err := k.tx.QueryRow(k.ctx, "SELECT value FROM journal_records WHERE bucket = $1 AND key = $2", rk.bucket, key).Scan(&v)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		k.records[rk] = v
	}
	if v == nil {
		return nil, ErrNotFound
	}
	return v, nil
}

func (k *pgKV) put(bucket, key, value []byte) error {
	rk := recordKey{string(bucket), string(key)}
	v := append(make([]byte, 0, len(value)), value...) // never nil: nil means absent
	k.records[rk] = v
	k.writes.Queue(`INSERT INTO journal_records (bucket, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value`, rk.bucket, []byte(rk.key), v)
	return nil
}

func (k *pgKV) del(bucket, key []byte) error {
	rk := recordKey{string(bucket), string(key)}
	k.records[rk] = nil
	k.writes.Queue("DELETE FROM journal_records WHERE bucket = $1 AND key = $2", rk.bucket, []byte(rk.key))
	return nil
}

// nextSeq reads the bucket's sequence once and counts on in memory; flush
// writes it back.
func (k *pgKV) nextSeq(bucket []byte) (uint64, error) {
	b := string(bucket)
	n, known := k.seqs[b]
	if !known {
		err := k.tx.QueryRow(k.ctx, "SELECT value FROM journal_sequences WHERE bucket = $1", b).Scan(&n)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return 0, err
		}
	}
	n++
	k.seqs[b] = n
	return n, nil
}

// flush sends the writes not sent yet, and the sequences moved, in one
// pipelined batch, and reports the first failure.
func (k *pgKV) flush() error {
	for b, n := range k.seqs {
		k.writes.Queue(`INSERT INTO journal_sequences (bucket, value) VALUES ($1, $2)
			ON CONFLICT (bucket) DO UPDATE SET value = excluded.value`, b, int64(n))
	}
	if k.writes.Len() == 0 {
		return nil
	}
	err := k.tx.SendBatch(k.ctx, &k.writes).Close()
	k.writes = pgx.Batch{}
	return err
}

// scanPage is how many records scan reads per query.
const scanPage = 500

// scan visits the records whose keys start with prefix, in key order.
func (k *pgKV) scan(bucket, prefix []byte, fn func(key, value []byte) error) error {
	return k.scanFrom(bucket, prefix, func(key, value []byte) (bool, error) {
		if !bytes.HasPrefix(key, prefix) {
			return false, nil
		}
		return true, fn(key, value)
	})
}

// scanFrom visits the records whose keys sort at or after from, in key
// order.
func (k *pgKV) scanFrom(bucket, from []byte, fn func(key, value []byte) (bool, error)) error {
	if err := k.flush(); err != nil {
		return err
	}
	// A nil slice would be NULL, which compares with nothing.
	from = append([]byte{}, from...)
	return k.paged("SELECT key, value FROM journal_records WHERE bucket = $1 AND ($2::bytea IS NULL OR key > $2) AND key >= $4 ORDER BY key LIMIT $3",
		bucket, nil, fn, from)
}

// lastKey returns the greatest key of bucket, nil when it has none.
func (k *pgKV) lastKey(bucket []byte) ([]byte, error) {
	if err := k.flush(); err != nil {
		return nil, err
	}
	var key []byte
	err := k.tx.QueryRow(k.ctx, "SELECT key FROM journal_records WHERE bucket = $1 ORDER BY key DESC LIMIT 1", string(bucket)).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return key, err
}

// scanBefore visits the records whose keys sort before before, newest
// first.
func (k *pgKV) scanBefore(bucket, before []byte, fn func(key, value []byte) (bool, error)) error {
	if err := k.flush(); err != nil {
		return err
	}
	return k.paged("SELECT key, value FROM journal_records WHERE bucket = $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key DESC LIMIT $3",
		bucket, before, fn)
}

// paged runs query, which selects records of bucket ($1) beyond a bound
// ($2, NULL for none) up to a page's size ($3), a page at a time, moving
// the bound to each page's last key, so that fn can use the transaction
// between pages and a large bucket is never held in memory whole. It
// stops when fn returns false or an error.
func (k *pgKV) paged(query string, bucket, bound []byte, fn func(key, value []byte) (bool, error), args ...any) error {
	for {
		rows, err := k.tx.Query(k.ctx, query, append([]any{string(bucket), bound, scanPage}, args...)...)
		if err != nil {
			return err
		}
		page, err := pgx.CollectRows(rows, scanRecord)
		if err != nil {
			return err
		}
		for _, r := range page {
			if more, err := fn(r[0], r[1]); err != nil || !more {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
		bound = page[len(page)-1][0]
	}
}

// scanRecord reads a row of key and value.
func scanRecord(row pgx.CollectableRow) ([2][]byte, error) {
	var kv [2][]byte
	return kv, row.Scan(&kv[0], &kv[1])
}

func (k *pgKV) count(bucket []byte) (int, error) {
	if err := k.flush(); err != nil {
		return 0, err
	}
	var n int
	err := k.tx.QueryRow(k.ctx, "SELECT count(*) FROM journal_records WHERE bucket = $1", string(bucket)).Scan(&n)
	return n, err
}

// ackAlert deletes the alert's outbox row, with the transaction's other
// writes. No row means another transaction (another replica, or this one
// before a crash) processed the alert and committed: this one fails with
// ErrAlreadyAcked rather than record its effects again.
func (k *pgKV) ackAlert(seq uint64) error {
	if k.acked[seq] {
		return nil
	}
	k.acked[seq] = true
	k.writes.Queue("DELETE FROM journal_outbox WHERE seq = $1", int64(seq)).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("alert %d: %w", seq, ErrAlreadyAcked)
		}
		return nil
	})
	return nil
}

func (k *pgKV) outboxAlert(seq uint64) ([]byte, error) {
	if k.acked[seq] {
		return nil, ErrNotFound
	}
	var p []byte
	err := k.tx.QueryRow(k.ctx, "SELECT payload FROM journal_outbox WHERE seq = $1 FOR UPDATE", int64(seq)).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return p, err
}

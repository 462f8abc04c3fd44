package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgKV is a PostgreSQL journal transaction.
type pgKV struct {
	ctx context.Context
	tx  pgx.Tx
	// acked are the outbox alerts this transaction acknowledged.
	acked map[uint64]bool
}

func (k *pgKV) get(bucket, key []byte) ([]byte, error) {
	var v []byte
	err := k.tx.QueryRow(k.ctx, "SELECT value FROM journal_records WHERE bucket = $1 AND key = $2", string(bucket), key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return v, err
}

func (k *pgKV) put(bucket, key, value []byte) error {
	_, err := k.tx.Exec(k.ctx, `INSERT INTO journal_records (bucket, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value`, string(bucket), key, value)
	return err
}

func (k *pgKV) del(bucket, key []byte) error {
	_, err := k.tx.Exec(k.ctx, "DELETE FROM journal_records WHERE bucket = $1 AND key = $2", string(bucket), key)
	return err
}

func (k *pgKV) nextSeq(bucket []byte) (uint64, error) {
	var n uint64
	err := k.tx.QueryRow(k.ctx, `INSERT INTO journal_sequences (bucket, value) VALUES ($1, 1)
		ON CONFLICT (bucket) DO UPDATE SET value = journal_sequences.value + 1 RETURNING value`, string(bucket)).Scan(&n)
	return n, err
}

// scanPage is how many records scan reads per query.
const scanPage = 500

// scan visits the records whose keys start with prefix, in key order.
func (k *pgKV) scan(bucket, prefix []byte, fn func(key, value []byte) error) error {
	// A nil slice would be NULL, which compares with nothing.
	from := append([]byte{}, prefix...)
	return k.paged("SELECT key, value FROM journal_records WHERE bucket = $1 AND ($2::bytea IS NULL OR key > $2) AND key >= $4 ORDER BY key LIMIT $3",
		bucket, nil, func(key, value []byte) (bool, error) {
			if !bytes.HasPrefix(key, prefix) {
				return false, nil
			}
			return true, fn(key, value)
		}, from)
}

// scanBefore visits the records whose keys sort before before, newest
// first.
func (k *pgKV) scanBefore(bucket, before []byte, fn func(key, value []byte) (bool, error)) error {
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
	var n int
	err := k.tx.QueryRow(k.ctx, "SELECT count(*) FROM journal_records WHERE bucket = $1", string(bucket)).Scan(&n)
	return n, err
}

// ackAlert deletes the alert's outbox row. No row means another
// transaction (another replica, or this one before a crash) processed the
// alert and committed: this one must not record its effects again.
func (k *pgKV) ackAlert(seq uint64) error {
	if k.acked[seq] {
		return nil
	}
	tag, err := k.tx.Exec(k.ctx, "DELETE FROM journal_outbox WHERE seq = $1", int64(seq))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("alert %d: %w", seq, ErrAlreadyAcked)
	}
	if k.acked == nil {
		k.acked = map[uint64]bool{}
	}
	k.acked[seq] = true
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

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// backend is what differs between the embedded journal (bbolt and the
// intake log) and the PostgreSQL journal. Store and Tx are built on it, so
// that the rest of drguard sees one API whichever journal is configured.
type backend interface {
	// view runs fn in a read-only transaction.
	view(fn func(kv) error) error
	// update runs fn in a read-write transaction that is durable when
	// update returns nil; writers are serialised. With a non-nil fence the
	// transaction first checks, inside itself, that the lease still holds
	// the fence's epoch, and fails with ErrFenced otherwise.
	update(fence *Lease, fn func(kv) error) error
	// appendAlerts makes encoded alerts durable in the outbox, in order.
	appendAlerts(ctx context.Context, payloads [][]byte) error
	// committers is how many groups appendAlerts may write at once.
	committers() int
	// trimOutbox drops what acknowledged alerts left behind.
	trimOutbox() error
	// pendingAlerts returns up to limit (0: all) unacknowledged alerts
	// in sequence order.
	pendingAlerts(limit int) ([]rawAlert, error)
	// ping checks that the journal can be read and written.
	ping(ctx context.Context) error
	close() error

	acquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	renewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	releaseLease(ctx context.Context, l Lease) error
}

// rawAlert is an outbox record: its sequence and appendAlert's encoding.
type rawAlert struct {
	seq     uint64
	payload []byte
}

// kv is one journal transaction as the typed accessors see it: buckets of
// keys in byte order, each bucket with its own sequence, and the outbox.
type kv interface {
	// get returns the value of key, or ErrNotFound. The value is valid
	// until the transaction ends.
	get(bucket, key []byte) ([]byte, error)
	put(bucket, key, value []byte) error
	del(bucket, key []byte) error
	// nextSeq returns the bucket's next sequence number, from 1; it is
	// rolled back with the transaction.
	nextSeq(bucket []byte) (uint64, error)
	// scan calls fn for every key that starts with prefix, in key order.
	// fn may use the transaction, but not write to the bucket scanned.
	scan(bucket, prefix []byte, fn func(key, value []byte) error) error
	// scanBefore calls fn for every key below before (every key when
	// before is nil), in reverse key order, until fn returns false.
	scanBefore(bucket, before []byte, fn func(key, value []byte) (bool, error)) error
	// scanFrom calls fn for every key at or after from, in key order,
	// until fn returns false.
	scanFrom(bucket, from []byte, fn func(key, value []byte) (bool, error)) error
	// lastKey returns the bucket's greatest key, nil when it is empty.
	lastKey(bucket []byte) ([]byte, error)
	count(bucket []byte) (int, error)
	// ackAlert removes an alert from the outbox. It fails with
	// ErrAlreadyAcked when another transaction already did.
	ackAlert(seq uint64) error
	// outboxAlert returns a pending alert's payload, or ErrNotFound.
	outboxAlert(seq uint64) ([]byte, error)
}

// get decodes the JSON record key of bucket into v.
func (t *Tx) get(bucket []byte, key string, v any) error {
	raw, err := t.kv.get(bucket, []byte(key))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// put writes v as the JSON record key of bucket.
func (t *Tx) put(bucket []byte, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s record: %w", bucket, err)
	}
	return t.kv.put(bucket, key, raw)
}

// nextID returns a new sequential identifier such as "run-000042".
func (t *Tx) nextID(bucket []byte, prefix string) (string, error) {
	n, err := t.kv.nextSeq(bucket)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s-%06d", prefix, n), nil
}

// forEach decodes and visits every record of bucket in key order.
func forEach[T any](t *Tx, bucket []byte, fn func(T) error) error {
	return forEachPrefix(t, bucket, "", fn)
}

// forEachPrefix decodes and visits the records whose keys start with prefix.
func forEachPrefix[T any](t *Tx, bucket []byte, prefix string, fn func(T) error) error {
	return t.kv.scan(bucket, []byte(prefix), func(_, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		return fn(v)
	})
}

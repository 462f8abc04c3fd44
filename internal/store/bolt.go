package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// boltBackend is the embedded journal: journal.db (bbolt) for the records
// and the outbox log beside it for intake. bbolt's file lock makes the
// process the journal's only writer.
type boltBackend struct {
	db     *bolt.DB
	outbox *outboxLog
	// acked is the highest outbox sequence whose effects are committed in
	// the journal; outbox records up to it are garbage to trim.
	acked atomic.Uint64
}

var _ backend = (*boltBackend)(nil)

// Open opens (creating when needed) the embedded journal in dir. It fails
// rather than waits when another process holds the journal.
func Open(dir string) (*Store, error) {
	b, err := openBolt(dir)
	if err != nil {
		return nil, err
	}
	return newStore(b), nil
}

func openBolt(dir string) (*boltBackend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	db, err := openBoltFile(filepath.Join(dir, FileName), "journal")
	if err != nil {
		return nil, err
	}
	var acked uint64
	err = db.Update(func(tx *bolt.Tx) error {
		rebuildIndex := tx.Bucket(bucketActiveRuns) == nil
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		acked = ackedSeq(tx)
		if rebuildIndex {
			return (&Tx{kv: &boltKV{tx: tx}}).rebuildActiveRuns()
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise journal: %w", err)
	}
	ob, err := openOutboxLog(filepath.Join(dir, OutboxDirName), acked)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	b := &boltBackend{db: db, outbox: ob}
	b.acked.Store(acked)
	return b, nil
}

// openTimeout bounds the wait for another process's lock on a bbolt file.
const openTimeout = 2 * time.Second

// ErrLocked is returned by Open and OpenReadOnly when another process
// holds the journal: a running drguard holds it for as long as it runs.
var ErrLocked = errors.New("locked by another process")

// OpenReadOnly opens the embedded journal in dir for reading only, for
// offline commands such as drguard postmortem. It writes nothing (not
// even the buckets a newer version would add), takes no intake log, and
// fails with ErrLocked after timeout while a process holds the journal
// for writing: bbolt lets readers share the file only with each other.
// Writes through the returned Store fail.
func OpenReadOnly(dir string, timeout time.Duration) (*Store, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open journal %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return newStore(&boltBackend{db: db}), nil
}

// errReadOnly is what the outbox answers in a journal opened read-only.
var errReadOnly = errors.New("journal opened read-only")

// openBoltFile opens one bbolt file tuned for commit latency.
func openBoltFile(path, what string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: openTimeout,
		// The freelist is rebuilt from the pages after a crash instead of
		// being written on every commit: fewer pages per fsync.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// Reserve address space up front so that growth rarely remaps
		// (a remap waits for every open read transaction).
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s %s: %w", what, path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s %s: %w", what, path, err)
	}
	return db, nil
}

func (b *boltBackend) close() error {
	if b.outbox == nil { // read-only
		return b.db.Close()
	}
	return errors.Join(b.outbox.close(), b.db.Close())
}

func (b *boltBackend) ping(ctx context.Context) error {
	err := b.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("journal has no meta bucket")
		}
		return ctx.Err()
	})
	if err != nil || b.outbox == nil {
		return err
	}
	return b.outbox.health()
}

func (b *boltBackend) view(fn func(kv) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(&boltKV{tx: tx, b: b}) })
}

// update ignores the fence: the file lock already makes this process the
// only writer, so its lease is never lost.
func (b *boltBackend) update(_ *Lease, fn func(kv) error) error {
	var k *boltKV
	err := b.db.Update(func(tx *bolt.Tx) error {
		k = &boltKV{tx: tx, b: b}
		return fn(k)
	})
	if err == nil && k.acked > b.acked.Load() {
		b.acked.Store(k.acked)
	}
	return err
}

func (b *boltBackend) appendAlerts(_ context.Context, payloads [][]byte) error {
	if b.outbox == nil {
		return errReadOnly
	}
	_, err := b.outbox.append(payloads)
	return err
}

// committers is one: the intake log has one writer, and its sequence is
// arrival order.
func (b *boltBackend) committers() int { return 1 }

func (b *boltBackend) trimOutbox() error {
	if b.outbox == nil {
		return errReadOnly
	}
	return b.outbox.trim(b.acked.Load())
}

func (b *boltBackend) pendingAlerts(limit int) ([]rawAlert, error) {
	if b.outbox == nil {
		return nil, errReadOnly
	}
	raws, first, err := b.outbox.read(b.acked.Load()+1, limit)
	out := make([]rawAlert, len(raws))
	for i, raw := range raws {
		out[i] = rawAlert{seq: first + uint64(i), payload: raw}
	}
	return out, err
}

// boltKV is a bbolt transaction.
type boltKV struct {
	tx *bolt.Tx
	b  *boltBackend
	// acked is the outbox sequence this transaction acknowledged up to.
	acked uint64
}

func u64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

// bucket returns a bucket that Open created.
func (k *boltKV) bucket(name []byte) (*bolt.Bucket, error) {
	b := k.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("journal has no %s bucket", name)
	}
	return b, nil
}

func (k *boltKV) get(bucket, key []byte) ([]byte, error) {
	b, err := k.bucket(bucket)
	if err != nil {
		return nil, err
	}
	v := b.Get(key)
	if v == nil {
		return nil, ErrNotFound
	}
	return v, nil
}

func (k *boltKV) put(bucket, key, value []byte) error {
	b, err := k.bucket(bucket)
	if err != nil {
		return err
	}
	if appendOnly(bucket) {
		b.FillPercent = appendFill
	}
	return b.Put(key, value)
}

func (k *boltKV) del(bucket, key []byte) error {
	b, err := k.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete(key)
}

func (k *boltKV) nextSeq(bucket []byte) (uint64, error) {
	b, err := k.bucket(bucket)
	if err != nil {
		return 0, err
	}
	return b.NextSequence()
}

func (k *boltKV) scan(bucket, prefix []byte, fn func(key, value []byte) error) error {
	return k.scanFrom(bucket, prefix, func(key, value []byte) (bool, error) {
		if !bytes.HasPrefix(key, prefix) {
			return false, nil
		}
		return true, fn(key, value)
	})
}

func (k *boltKV) scanFrom(bucket, from []byte, fn func(key, value []byte) (bool, error)) error {
	b, err := k.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	for key, v := c.Seek(from); key != nil; key, v = c.Next() {
		if more, err := fn(key, v); err != nil || !more {
			return err
		}
	}
	return nil
}

func (k *boltKV) lastKey(bucket []byte) ([]byte, error) {
	b, err := k.bucket(bucket)
	if err != nil {
		return nil, err
	}
	key, _ := b.Cursor().Last()
	return key, nil
}

func (k *boltKV) scanBefore(bucket, before []byte, fn func(key, value []byte) (bool, error)) error {
	b, err := k.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	key, v := c.Last()
	if before != nil {
		if key, _ = c.Seek(before); key == nil {
			key, v = c.Last()
		} else {
			key, v = c.Prev()
		}
	}
	for ; key != nil; key, v = c.Prev() {
		if more, err := fn(key, v); err != nil || !more {
			return err
		}
	}
	return nil
}

func (k *boltKV) count(bucket []byte) (int, error) {
	b, err := k.bucket(bucket)
	if err != nil {
		return 0, err
	}
	return b.Stats().KeyN, nil
}

// appendFill is how full bbolt packs the pages of a bucket whose new keys
// sort after every existing one. bbolt splits a page at its fill percent
// (half, by default), so that inserts in the middle find room; when new
// keys only ever go at the end, half-full pages just mean twice the pages
// to write and fsync.
const appendFill = 0.95

// appendOnly reports whether new keys of bucket sort after the existing
// ones: sequence numbers and sequential IDs.
func appendOnly(bucket []byte) bool {
	switch string(bucket) {
	case string(bucketAudit), string(bucketIncidents), string(bucketRuns), string(bucketApprovals):
		return true
	}
	return false
}

var ackedKey = []byte("outbox_acked")

// ackedSeq reads the outbox watermark from the journal.
func ackedSeq(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(ackedKey); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// ackAlert moves the outbox watermark in the journal: with one writer,
// alerts are acknowledged in sequence order, so the watermark is exact.
// A repeat within the transaction is harmless; an alert acknowledged by an
// earlier transaction is ErrAlreadyAcked.
func (k *boltKV) ackAlert(seq uint64) error {
	if seq <= k.acked {
		return nil
	}
	if seq <= ackedSeq(k.tx) {
		return fmt.Errorf("alert %d: %w", seq, ErrAlreadyAcked)
	}
	if err := k.tx.Bucket(bucketMeta).Put(ackedKey, u64(seq)); err != nil {
		return err
	}
	k.acked = seq
	return nil
}

func (k *boltKV) outboxAlert(seq uint64) ([]byte, error) {
	if seq <= max(k.acked, ackedSeq(k.tx)) || k.b.outbox == nil {
		return nil, ErrNotFound
	}
	raws, first, err := k.b.outbox.read(seq, 1)
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 || first != seq {
		return nil, ErrNotFound
	}
	return raws[0], nil
}

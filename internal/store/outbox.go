package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The outbox lives in its own file so that webhook intake, which must
// fsync before answering, never waits behind the engine's transactions on
// the journal. The engine acknowledges alerts by moving a watermark in the
// journal in the same transaction that records their effects; entries at
// or below the watermark are then garbage, trimmed by later intake commits.

var (
	bucketOutbox = []byte("outbox")
	ackedKey     = []byte("outbox_acked")
)

// maxGroup bounds how many requests share one intake transaction, and
// maxTrim how many acknowledged entries one transaction deletes.
const (
	maxGroup = 256
	maxTrim  = 4096
)

type enqueueReq struct {
	alerts [][]byte // JSON, encoded before the write lock is taken
	errc   chan error
}

func openOutbox(path string) (*bolt.DB, error) {
	db, err := openBolt(path, "outbox")
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketOutbox)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise outbox %s: %w", path, err)
	}
	return db, nil
}

// EnqueueAlerts appends alerts to the outbox and returns once they are
// durable. Concurrent callers are committed together in one transaction.
// Each alert's Seq is its outbox key, assigned in arrival order and filled
// in when the alert is read back.
func (s *Store) EnqueueAlerts(ctx context.Context, alerts []Alert) error {
	req := &enqueueReq{alerts: make([][]byte, len(alerts)), errc: make(chan error, 1)}
	for i := range alerts {
		raw, err := json.Marshal(&alerts[i])
		if err != nil {
			return fmt.Errorf("encode alert: %w", err)
		}
		req.alerts[i] = raw
	}
	return s.submit(ctx, req)
}

// TrimOutbox asks the commit loop to delete acknowledged outbox entries.
// Intake commits trim as they go; the engine calls this when it has caught
// up, so that an idle outbox is emptied too.
func (s *Store) TrimOutbox(ctx context.Context) error {
	if s.trimmed.Load() >= s.acked.Load() {
		return nil
	}
	return s.submit(ctx, &enqueueReq{errc: make(chan error, 1)})
}

func (s *Store) submit(ctx context.Context, req *enqueueReq) error {
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	select {
	case s.enqueue <- req:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the request is committed or failed by the loop; wait for
	// the verdict even if ctx ends, so that a 200 is never lost nor an
	// alert committed after its caller was told it failed. A request that
	// slipped in after the loop stopped was never committed.
	select {
	case err := <-req.errc:
		return err
	case <-s.loopDone:
		select {
		case err := <-req.errc:
			return err
		default:
			return ErrClosed
		}
	}
}

func (s *Store) commitLoop() {
	defer s.wg.Done()
	defer close(s.loopDone)
	batch := make([]*enqueueReq, 0, maxGroup)
	for {
		batch = batch[:0]
		select {
		case req := <-s.enqueue:
			batch = append(batch, req)
		case <-s.done:
			s.drainClosed()
			return
		}
	fill:
		for len(batch) < maxGroup {
			select {
			case req := <-s.enqueue:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		acked := s.acked.Load()
		var trimmedTo uint64
		err := s.outbox.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketOutbox)
			for _, req := range batch {
				for _, raw := range req.alerts {
					seq, err := b.NextSequence()
					if err != nil {
						return err
					}
					if err := b.Put(u64(seq), raw); err != nil {
						return err
					}
				}
			}
			var err error
			trimmedTo, err = trim(b, acked)
			return err
		})
		if err == nil && trimmedTo > s.trimmed.Load() {
			s.trimmed.Store(trimmedTo)
		}
		for _, req := range batch {
			req.errc <- err
		}
	}
}

// trim deletes up to maxTrim entries at or below acked and returns the
// highest sequence known to be gone.
func trim(b *bolt.Bucket, acked uint64) (uint64, error) {
	c := b.Cursor()
	done := acked
	n := 0
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= acked; k, _ = c.First() {
		if n == maxTrim {
			done = binary.BigEndian.Uint64(k) - 1
			break
		}
		if err := c.Delete(); err != nil {
			return 0, err
		}
		n++
	}
	return done, nil
}

// drainClosed fails requests queued after Close began.
func (s *Store) drainClosed() {
	for {
		select {
		case req := <-s.enqueue:
			req.errc <- ErrClosed
		default:
			return
		}
	}
}

// PendingAlerts returns up to limit (0: all) unacknowledged alerts in
// arrival order.
func (s *Store) PendingAlerts(limit int) ([]Alert, error) {
	from := s.acked.Load() + 1
	var out []Alert
	err := s.outbox.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(u64(from)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var a Alert
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode outbox alert %d: %w", binary.BigEndian.Uint64(k), err)
			}
			a.Seq = binary.BigEndian.Uint64(k)
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// ackedSeq reads the outbox watermark from the journal.
func (t *Tx) ackedSeq() uint64 {
	if v := t.tx.Bucket(bucketMeta).Get(ackedKey); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// AckAlert marks an outbox alert as processed. Do it in the transaction
// that records the alert's effects: the watermark and the effects become
// durable together, so an alert is processed exactly once across crashes.
// Alerts must be acknowledged in sequence order.
func (t *Tx) AckAlert(seq uint64) error {
	if seq <= t.ackedSeq() {
		return nil
	}
	if err := t.tx.Bucket(bucketMeta).Put(ackedKey, u64(seq)); err != nil {
		return err
	}
	t.acked = seq
	return nil
}

// DeadLetter moves an outbox alert that cannot be processed into the
// journal's dead-letter bucket, with the reason, and acknowledges it.
func (t *Tx) DeadLetter(seq uint64, reason string) error {
	var raw []byte
	err := t.s.outbox.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketOutbox).Get(u64(seq)); v != nil {
			raw = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if raw == nil || seq <= t.ackedSeq() {
		return ErrNotFound
	}
	rec, err := json.Marshal(struct {
		Alert  json.RawMessage `json:"alert"`
		Reason string          `json:"reason"`
		Time   time.Time       `json:"time"`
	}{raw, reason, time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := t.tx.Bucket(bucketDeadLetter).Put(u64(seq), rec); err != nil {
		return err
	}
	return t.AckAlert(seq)
}

// DeadLetters counts the alerts in the dead-letter bucket.
func (t *Tx) DeadLetters() int { return t.tx.Bucket(bucketDeadLetter).Stats().KeyN }

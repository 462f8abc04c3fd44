// Package store is drguard's journal: an embedded, crash-safe bbolt file
// under --storage.path holding the alert outbox, incidents, runs, steps,
// approvals, guardrail state and an append-only audit log.
//
// Every write is a serialisable transaction that is fsynced before it
// returns. Webhook intake goes through a group-commit loop so that many
// concurrent requests share one fsync without waiting on a timer.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("journal is closed")

// FileName is the journal's file name inside the storage directory.
const FileName = "journal.db"

var (
	bucketOutbox       = []byte("outbox")
	bucketIncidents    = []byte("incidents")
	bucketIncidentKeys = []byte("incident_keys")
	bucketRuns         = []byte("runs")
	bucketApprovals    = []byte("approvals")
	bucketAudit        = []byte("audit")
	bucketGuards       = []byte("guards")
	bucketMeta         = []byte("meta")
	// bucketActiveRuns indexes the IDs of runs that are still active, so
	// the engine need not scan every run ever journaled.
	bucketActiveRuns = []byte("active_runs")
	// bucketDeadLetter keeps alerts that repeatedly failed processing, so
	// that one bad alert never stalls the outbox and none is lost.
	bucketDeadLetter = []byte("dead_letter")
	allBuckets       = [][]byte{bucketOutbox, bucketIncidents, bucketIncidentKeys, bucketRuns, bucketApprovals, bucketAudit, bucketGuards, bucketMeta, bucketActiveRuns, bucketDeadLetter}
)

// Store is an open journal. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	enqueue chan *enqueueReq
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

type enqueueReq struct {
	alerts [][]byte // JSON, encoded before the write lock is taken
	errc   chan error
}

// Open opens (creating when needed) the journal in dir. It fails rather
// than waits when another process holds the journal.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 2 * time.Second,
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
			return nil, fmt.Errorf("open journal %s: locked by another process", path)
		}
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		rebuildIndex := tx.Bucket(bucketActiveRuns) == nil
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if rebuildIndex {
			return (&Tx{tx: tx}).rebuildActiveRuns()
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise journal %s: %w", path, err)
	}
	s := &Store{db: db, enqueue: make(chan *enqueueReq, 1024), done: make(chan struct{})}
	s.wg.Add(1)
	go s.commitLoop()
	return s, nil
}

// Close stops the commit loop and closes the file. Pending enqueues finish
// first.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		err = s.db.Close()
	})
	return err
}

// Ping checks that the journal can be read.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("journal has no meta bucket")
		}
		return ctx.Err()
	})
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// Update runs fn in a read-write transaction that is durable when Update
// returns nil. When fn returns an error nothing is written.
func (s *Store) Update(fn func(*Tx) error) error {
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	return s.db.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
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
	select {
	case s.enqueue <- req:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the request is committed or failed by the loop; wait for
	// the verdict even if ctx ends, so that a 200 is never lost nor an
	// alert committed after its caller was told it failed.
	return <-req.errc
}

// maxGroup bounds how many requests share one transaction.
const maxGroup = 256

func (s *Store) commitLoop() {
	defer s.wg.Done()
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
		err := s.db.Update(func(btx *bolt.Tx) error {
			tx := &Tx{tx: btx}
			for _, req := range batch {
				for _, raw := range req.alerts {
					if err := tx.putAlert(raw); err != nil {
						return err
					}
				}
			}
			return nil
		})
		for _, req := range batch {
			req.errc <- err
		}
	}
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

// PendingAlerts returns up to limit unprocessed alerts in arrival order.
func (s *Store) PendingAlerts(limit int) ([]Alert, error) {
	var out []Alert
	err := s.View(func(tx *Tx) error {
		var err error
		out, err = tx.PendingAlerts(limit)
		return err
	})
	return out, err
}

// Package store is drguard's journal, crash-safe files under
// --storage.path: journal.db (bbolt) holds incidents, runs, steps,
// approvals, guardrail state and an append-only audit log; the outbox
// directory holds an append-only log of alerts as received until the
// engine has recorded their effects.
//
// Every journal write is a serialisable transaction that is fsynced before
// it returns. Webhook intake goes through a group-commit loop so that many
// concurrent requests share one durable write without waiting on a timer,
// into its own log, so that it never waits behind the engine's
// transactions.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("journal is closed")

// File names inside the storage directory.
const (
	FileName = "journal.db"
	// legacyOutboxFileName is the bbolt outbox of earlier versions,
	// imported into the outbox log at open.
	legacyOutboxFileName = "outbox.db"
)

var (
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
	allBuckets       = [][]byte{bucketIncidents, bucketIncidentKeys, bucketRuns, bucketApprovals, bucketAudit, bucketGuards, bucketMeta, bucketActiveRuns, bucketDeadLetter}
)

// Store is an open journal. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	outbox  *outboxLog
	enqueue chan *enqueueReq
	done    chan struct{} // closed by Close
	// loopDone is closed when the commit loop has stopped.
	loopDone chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	// acked is the highest outbox sequence whose effects are committed in
	// the journal; outbox records up to it are garbage to trim.
	acked atomic.Uint64
}

// Open opens (creating when needed) the journal in dir. It fails rather
// than waits when another process holds the journal.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	db, err := openBolt(filepath.Join(dir, FileName), "journal")
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
		acked = (&Tx{tx: tx}).ackedSeq()
		if rebuildIndex {
			return (&Tx{tx: tx}).rebuildActiveRuns()
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise journal: %w", err)
	}
	ob, err := openOutboxLog(filepath.Join(dir, OutboxDirName), acked)
	if err == nil {
		err = importLegacyOutbox(filepath.Join(dir, legacyOutboxFileName), acked, ob)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &Store{db: db, outbox: ob, enqueue: make(chan *enqueueReq, 1024), done: make(chan struct{}), loopDone: make(chan struct{})}
	s.acked.Store(acked)
	s.wg.Add(1)
	go s.commitLoop()
	return s, nil
}

// openTimeout bounds the wait for another process's lock on a bbolt file.
const openTimeout = 2 * time.Second

// openBolt opens one bbolt file tuned for commit latency.
func openBolt(path, what string) (*bolt.DB, error) {
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
			return nil, fmt.Errorf("open %s %s: locked by another process", what, path)
		}
		return nil, fmt.Errorf("open %s %s: %w", what, path, err)
	}
	return db, nil
}

// Close stops the commit loop and closes the file. Pending enqueues finish
// first.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		err = errors.Join(s.outbox.close(), s.db.Close())
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
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("journal has no meta bucket")
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	return s.outbox.health()
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, s: s}) })
}

// Update runs fn in a read-write transaction that is durable when Update
// returns nil. When fn returns an error nothing is written.
func (s *Store) Update(fn func(*Tx) error) error {
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	var t *Tx
	err := s.db.Update(func(btx *bolt.Tx) error {
		t = &Tx{tx: btx, s: s}
		return fn(t)
	})
	if err == nil && t.acked > s.acked.Load() {
		s.acked.Store(t.acked)
	}
	return err
}

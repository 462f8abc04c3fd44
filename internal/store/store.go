// Package store is drguard's journal: incidents, runs, steps, approvals,
// guardrail state, an append-only audit log, backup records, dead letters
// and the outbox of alerts as received, kept until the engine has recorded
// their effects. It has two backends behind one API (Store and Tx):
//
//   - the embedded journal (Open), the default for one replica: crash-safe
//     files under --storage.path, journal.db (bbolt) for the records and an
//     append-only intake log for the outbox;
//   - the PostgreSQL journal (OpenPostgres), shared by several replicas:
//     the same records in tables of a database of their own, never the
//     database drguard guards.
//
// Every journal write is a serialisable transaction, durable when it
// returns: writers are serialised (bbolt's one writer; on PostgreSQL a
// transaction-level lock taken first), so a transaction reads what every
// earlier one wrote and audit sequence numbers commit in order. Webhook
// intake goes through a group-commit loop so that many concurrent
// requests share one durable write (an O_DSYNC append, or one INSERT),
// without waiting behind the engine's transactions.
//
// # Outbox
//
// EnqueueAlerts returns once the alerts are durable; PendingAlerts hands
// them to the engine in sequence order; Tx.AckAlert removes one in the
// transaction that records its effects, so each alert is processed once
// across crashes. On PostgreSQL sequence numbers of concurrent intake
// transactions can commit out of order, so alerts are acknowledged one by
// one, never by a high-water mark that could skip one committed late.
//
// # Leadership
//
// Replicas sharing a PostgreSQL journal elect a leader with a lease row:
// AcquireLease takes the lease when it is free or expired (by the
// database's clock) and increments its epoch; the leader calls RenewLease
// every few seconds (a third of the ttl, say) and ReleaseLease on a clean
// shutdown. Every write the leader alone may do goes through UpdateFenced,
// which checks inside its transaction that the lease still holds the
// leader's epoch and fails with ErrFenced otherwise, so a deposed leader's
// late writes are refused, however late they arrive. A leader stops acting
// at Lease.Deadline unless a renewal moved it: a lease it cannot renew may
// be taken over once the ttl has passed. The embedded journal is one
// process behind a file lock: its lease is always held, with epoch 1.
//
//	l, err := st.AcquireLease(ctx, store.LeaderLease, holder, 15*time.Second)
//	// errors.Is(err, store.ErrLeaseHeld): follow, try again later.
//	l, err = st.RenewLease(ctx, l, 15*time.Second) // every 5 s, before l.Deadline
//	err = st.UpdateFenced(l, func(tx *store.Tx) error { … })
//	// errors.Is(err, store.ErrFenced) from either: step down at once.
package store

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("journal is closed")

// ErrAlreadyAcked is returned by Tx.AckAlert for an alert that another
// transaction already acknowledged (processed): the transaction must not
// record its effects a second time.
var ErrAlreadyAcked = errors.New("alert already acknowledged")

// FileName is the embedded journal's file inside the storage directory.
const FileName = "journal.db"

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
	// allBuckets lists the buckets the embedded journal creates at open;
	// files that add a bucket append it in an init function.
	allBuckets = [][]byte{bucketIncidents, bucketIncidentKeys, bucketRuns, bucketApprovals, bucketAudit, bucketGuards, bucketMeta, bucketActiveRuns, bucketDeadLetter}
)

// Store is an open journal. It is safe for concurrent use.
type Store struct {
	b       backend
	enqueue chan *enqueueReq
	done    chan struct{} // closed by Close
	// loopDone is closed when the commit loops have stopped.
	loopDone chan struct{}
	wg       sync.WaitGroup // the commit loops
	once     sync.Once
	resends  resendIndex // what intake need not write again
}

// newStore starts the commit loops over an open backend.
func newStore(b backend) *Store {
	s := &Store{b: b, enqueue: make(chan *enqueueReq, 1024), done: make(chan struct{}), loopDone: make(chan struct{})}
	n := b.committers()
	s.wg.Add(n)
	for range n {
		go s.commitLoop()
	}
	go func() {
		s.wg.Wait()
		close(s.loopDone)
	}()
	return s
}

// Close stops the commit loops and closes the journal. Pending enqueues
// finish first.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		err = s.b.close()
	})
	return err
}

// closed reports whether Close has begun.
func (s *Store) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Ping checks that the journal can be read and written, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed() {
		return ErrClosed
	}
	return s.b.ping(ctx)
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	if s.closed() {
		return ErrClosed
	}
	return s.b.view(func(k kv) error { return fn(&Tx{kv: k}) })
}

// Update runs fn in a read-write transaction that is durable when Update
// returns nil. When fn returns an error nothing is written. fn runs once:
// transactions are serialised, never retried.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.update(nil, fn)
}

func (s *Store) update(fence *Lease, fn func(*Tx) error) error {
	if s.closed() {
		return ErrClosed
	}
	return s.b.update(fence, func(k kv) error { return fn(&Tx{kv: k}) })
}

package remediate

import (
	"errors"
	"sync"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// The engine's journal writes go through one writer. Transactions that
// wait at the same time are committed together, in one journal write and
// one fsync, in the order they arrived; urgent ones (a finished step's
// outcome) go before the others, so that the completion of a step is
// durable within a commit or two of the action returning, however busy the
// outbox processor and the workers are. The store's transactions are
// serialised anyway; grouping them turns a queue of fsyncs into one.
//
// A request may be run more than once: when one request of a group fails,
// the transaction is rolled back, the failing request runs alone (its
// error is its caller's) and the others are committed again without it.
// Request functions therefore set everything they report afresh on each
// call.

// maxWriteGroup bounds how many requests share one transaction.
const maxWriteGroup = 16

// writeReq is one transaction a caller waits for.
type writeReq struct {
	fn func(*txn) error
	// tm is the term whose write this is (fenced by its lease); nil for
	// a write any replica makes.
	tm   *term
	err  error
	done chan struct{}
}

// writer queues requests; a goroutine runs while there are any.
type writer struct {
	mu      sync.Mutex
	running bool
	urgent  []*writeReq
	normal  []*writeReq
}

// effects are what a transaction does outside the journal (metrics, logs,
// queueing runs). They run only once the transaction has committed, in
// commit order, on the writer's goroutine: they must not block.
type effects struct{ fns []func() }

func (f *effects) add(fn func()) { f.fns = append(f.fns, fn) }

// update runs fn in a journal transaction of the current term, fenced by
// its lease, and applies its effects when, and only when, the transaction
// commits. Without a term it fails with ErrNotLeader.
func (e *Engine) update(fn func(t *txn) error) error {
	tm := e.term.Load()
	if tm == nil {
		return ErrNotLeader
	}
	return e.commit(tm, fn, false)
}

// updateIn is update in term tm, which may have ended (the writes of a
// step are fenced by the term that started it); urgent goes ahead of every
// waiting non-urgent transaction.
func (e *Engine) updateIn(tm *term, urgent bool, fn func(t *txn) error) error {
	return e.commit(tm, fn, urgent)
}

// record is update for a write that any replica makes (a decision, the
// kill switch): it is not fenced.
func (e *Engine) record(fn func(t *txn) error) error { return e.commit(nil, fn, false) }

func (e *Engine) commit(tm *term, fn func(t *txn) error, urgent bool) error {
	r := &writeReq{fn: fn, tm: tm, done: make(chan struct{})}
	w := &e.writer
	w.mu.Lock()
	if urgent {
		w.urgent = append(w.urgent, r)
	} else {
		w.normal = append(w.normal, r)
	}
	if !w.running {
		w.running = true
		go e.writeLoop()
	}
	w.mu.Unlock()
	<-r.done
	return r.err
}

// writeLoop commits groups of requests until none is waiting.
func (e *Engine) writeLoop() {
	w := &e.writer
	for {
		w.mu.Lock()
		group := take(&w.urgent)
		if len(group) == 0 {
			group = take(&w.normal)
		}
		if len(group) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		e.writeGroup(group)
	}
}

// take removes up to maxWriteGroup requests from the front of q that are
// fenced by the same lease.
func take(q *[]*writeReq) []*writeReq {
	n := min(len(*q), maxWriteGroup)
	if n == 0 {
		return nil
	}
	for i := 1; i < n; i++ {
		if (*q)[i].tm.fence() != (*q)[0].tm.fence() {
			n = i
			break
		}
	}
	group := make([]*writeReq, n)
	copy(group, *q)
	*q = append((*q)[:0], (*q)[n:]...)
	return group
}

// writeGroup commits the requests of group in one transaction, applies
// their effects and releases their callers.
func (e *Engine) writeGroup(group []*writeReq) {
	failed := -1
	fxs := make([]*effects, len(group))
	fence := group[0].tm.fence()
	update := e.store.Update
	if fence != nil {
		update = func(fn func(*store.Tx) error) error { return e.store.UpdateFenced(*fence, fn) }
	}
	err := update(func(tx *store.Tx) error {
		for i, r := range group {
			fxs[i] = &effects{}
			t := &txn{e: e, tm: r.tm, tx: tx, fx: fxs[i], now: e.now().UTC()}
			err := r.fn(t)
			if err == nil && t.approvalsChanged {
				err = t.syncPendingGauge()
			}
			if err != nil {
				failed = i
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
		for i, r := range group {
			for _, f := range fxs[i].fns {
				f()
			}
			close(r.done)
		}
	case fence != nil && errors.Is(err, store.ErrFenced):
		// Deposed: every write of the term is refused.
		if e.onFenced != nil {
			e.onFenced(*fence, err)
		}
		for _, r := range group {
			r.err = err
			close(r.done)
		}
	case len(group) == 1:
		e.refused(err)
		group[0].err = err
		close(group[0].done)
	case failed >= 0:
		rest := append(append([]*writeReq{}, group[:failed]...), group[failed+1:]...)
		e.writeGroup(rest)
		e.writeGroup(group[failed : failed+1])
	default:
		// The commit itself failed: each request finds out alone.
		for _, r := range group {
			e.writeGroup([]*writeReq{r})
		}
	}
}

// refused journals, in a transaction of its own, a move the state machine
// refused, so that the refusal is on record although the transaction that
// attempted it was rolled back.
func (e *Engine) refused(err error) {
	var te *TransitionError
	if !errors.As(err, &te) {
		return
	}
	e.log.Error("state machine refused a transition", "entity", te.Entity, "id", te.ID, "from", te.From, "to", te.To)
	e.m.TransitionsRefused.Inc()
	subject := te.ID
	jerr := e.store.Update(func(tx *store.Tx) error {
		return tx.Audit(store.AuditEntry{Time: e.now().UTC(), Actor: systemActor, Action: "transition.refused", Subject: subject,
			Detail: map[string]string{"entity": te.Entity, "from": te.From, "to": te.To}})
	})
	if jerr != nil {
		e.log.Error("journaling a refused transition failed", "err", jerr)
	}
}

package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// Replicas of drguard share one journal and elect a leader (internal/
// leader); only the leader's engine processes the outbox, starts steps and
// expires approvals, one leadership term at a time. Every journal write of
// a term is fenced by the term's lease, so that the writes of a replica
// that was deposed without knowing it — a late step start, a late outcome —
// are refused by the journal (store.ErrFenced) instead of racing the new
// leader's. Every replica records decisions and the kill switch: those
// writes are not fenced, and the leader's queue finds a decided approval
// within a tick.
//
// A step outlives the term that started it: when the term ends, the step
// runs on, but its outcome, fenced by the old lease, is refused, and the
// next term's recovery (on whichever replica) records it interrupted, as
// after a crash.

// ErrNotLeader is returned by writes only the leader may make, on an
// engine that leads no term.
var ErrNotLeader = errors.New("remediate: this replica does not lead")

// term is one leadership term: the lease that fences its writes (nil for
// an engine that leads without one: Run) and its queue of runs.
type term struct {
	lease *store.Lease
	queue workqueue.TypedRateLimitingInterface[string]
}

// fence is the lease a term's writes are fenced by; nil for no term, or a
// term without a lease.
func (tm *term) fence() *store.Lease {
	if tm == nil {
		return nil
	}
	return tm.lease
}

// Lead runs one leadership term until ctx ends: it records the steps that
// were running when the previous term ended (anywhere) as interrupted,
// re-running only idempotent ones, then processes the outbox, advances
// runs, expires approvals and ends waits for corroboration. Every journal
// write of the term is fenced by lease (nil: none, for a single process).
// It returns nil when ctx ends, after the workers have stopped; steps
// still executing run on until Shutdown.
func (e *Engine) Lead(ctx context.Context, lease *store.Lease) error {
	tm := &term{lease: lease, queue: newRunQueue()}
	if !e.term.CompareAndSwap(nil, tm) {
		return errors.New("remediate: the engine already leads a term")
	}
	defer e.term.Store(nil)
	e.mu.Lock()
	// Outcomes of an earlier term that were not journaled are refused by
	// its lease; recovery records their steps interrupted.
	clear(e.unrecorded)
	clear(e.held)
	e.mu.Unlock()
	if err := e.recover(); err != nil {
		return fmt.Errorf("recover journal: %w", err)
	}
	stopWorkers := e.startWorkers(ctx, tm)
	defer stopWorkers()
	t := time.NewTicker(e.tick)
	defer t.Stop()
	for {
		e.cycle(ctx, tm)
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
			if !e.settleBurst(ctx) {
				return nil
			}
		case <-t.C:
		}
	}
}

// Run leads for as long as ctx lasts, without a lease (one process alone
// on its journal), then stops the steps in flight (they stay journaled
// running, and the next start records them interrupted) and returns nil.
func (e *Engine) Run(ctx context.Context) error {
	err := e.Lead(ctx, nil)
	e.Shutdown()
	return err
}

// Shutdown cancels the steps in flight and waits for them to return:
// nothing more is journaled of them.
func (e *Engine) Shutdown() {
	e.stopSteps()
	e.wg.Wait()
}

// Leading reports whether the engine leads a term.
func (e *Engine) Leading() bool { return e.term.Load() != nil }

package remediate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// Runs are advanced from a work queue (client-go's rate-limited queue, as
// a Kubernetes controller reconciles objects): run IDs are its keys, so a
// run is never advanced by two workers at once and a run queued twice is
// advanced once. A fixed set of workers takes runs from it; a run that
// fails to advance (the journal cannot be written, say) is queued again
// after an exponential backoff, logged once per attempt and counted in
// drguard_engine_retries_total, and forgotten once it advances. A step
// executes in a goroutine of its own, so that a long step holds no
// worker; when it ends, its outcome is journaled at once and the run is
// queued for its next step.
const (
	workers   = 4
	retryBase = 50 * time.Millisecond
	retryMax  = 30 * time.Second
)

// approvalSettle is how long an approved step waits before it starts (and
// processes the outbox first, as every gated step does): a resolution of
// its alert that arrives with the approval, in either order, is seen
// before the step starts, and the run ends obsolete instead.
const approvalSettle = time.Second

// hold queues an approved run once approvalSettle has passed; until then
// resync leaves it alone.
func (e *Engine) hold(runID string) {
	tm := e.term.Load()
	if tm == nil {
		return // the leader's resync finds the run
	}
	e.mu.Lock()
	e.held[runID] = time.Now().Add(e.approvalSettle)
	e.mu.Unlock()
	tm.queue.AddAfter(runID, e.approvalSettle)
}

func newRunQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](retryBase, retryMax))
}

// startWorkers starts the term's workers. The function it returns drains
// the queue (workers skip what is left once ctx has ended) and stops the
// workers; steps in flight run on (Shutdown waits for them).
func (e *Engine) startWorkers(ctx context.Context, tm *term) func() {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e.processNext(ctx, tm) {
			}
		}()
	}
	return func() {
		tm.queue.ShutDownWithDrain()
		tm.queue.ShutDown() // stops the delaying queue's timer loop too
		wg.Wait()
	}
}

// processNext advances the next queued run. It reports false once the
// queue has shut down.
func (e *Engine) processNext(ctx context.Context, tm *term) bool {
	id, quit := tm.queue.Get()
	if quit {
		return false
	}
	defer tm.queue.Done(id)
	if ctx.Err() != nil {
		return true
	}
	if err := e.sync(ctx, tm, id); err != nil {
		if ctx.Err() == nil {
			e.retry(tm, id, err)
		}
		return true
	}
	tm.queue.Forget(id)
	return true
}

// retry queues a run again after its backoff, and says so once.
func (e *Engine) retry(tm *term, id string, err error) {
	tm.queue.AddRateLimited(id)
	n := tm.queue.NumRequeues(id)
	e.m.Retries.Inc()
	e.log.Warn("run did not advance; retrying after a backoff", "run", id, "attempt", n, "backoff", backoff(n), "err", err)
}

// backoff is the delay the queue's rate limiter gives the nth retry.
func backoff(n int) time.Duration {
	d := retryBase
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// sync advances run id: it first journals the outcome of a step whose
// completion could not be journaled, then starts the run's next step (in a
// goroutine), asks for an approval, or ends the run.
func (e *Engine) sync(ctx context.Context, tm *term, id string) error {
	e.mu.Lock()
	o, executing := e.unrecorded[id], e.executing[id]
	delete(e.held, id)
	e.mu.Unlock()
	if o != nil {
		_, err := e.complete(o.tm, id, o)
		if err != nil && !errors.Is(err, store.ErrFenced) {
			return fmt.Errorf("journaling the outcome of step %d: %w", o.index, err)
		}
		e.mu.Lock()
		delete(e.unrecorded, id)
		e.mu.Unlock()
	}
	if executing {
		return nil
	}
	next, err := e.advance(ctx, id)
	if err != nil || next == nil {
		return err
	}
	if ctx.Err() != nil {
		// The term ended while the step's start was being journaled: it
		// does not start here; the next term records it interrupted.
		e.log.Warn("the term ended as a step was starting; not started", "run", id, "step", next.run.Steps[next.index].Name)
		return nil
	}
	next.tm = tm
	e.mu.Lock()
	e.executing[id] = true
	e.busy.Add(1)
	e.mu.Unlock()
	e.wg.Add(1)
	go e.execute(e.stepCtx, next)
	return nil
}

// execute runs a step the journal marks running, journals its outcome and
// queues the run for what comes next. When the outcome cannot be
// journaled it is kept, and the run retried from the queue.
func (e *Engine) execute(ctx context.Context, n *startedStep) {
	defer e.wg.Done()
	id := n.run.ID
	o := e.runStep(ctx, n)
	var err error
	active := false
	if o != nil {
		active, err = e.complete(n.tm, id, o)
	}
	fenced := errors.Is(err, store.ErrFenced)
	e.mu.Lock()
	delete(e.executing, id)
	e.busy.Add(-1)
	if o != nil && err != nil && !fenced {
		e.unrecorded[id] = o
	}
	e.mu.Unlock()
	switch {
	case o == nil: // shutting down: the step stays journaled running
	case fenced:
		// Deposed: the next term records the step interrupted.
		e.log.Error("the outcome of a step was refused: the term that started it has ended", "run", id,
			"step", n.run.Steps[n.index].Name, "failed", o.err != nil, "err", err)
	case err != nil:
		e.retry(n.tm, id, fmt.Errorf("journaling the outcome of step %s: %w", n.run.Steps[n.index].Name, err))
	case active:
		n.tm.queue.Add(id)
	}
}

// resync queues every active run that has work to do and is neither
// executing a step here nor waiting for a retry, as a controller's
// periodic resync does: a run whose queueing was missed (the engine was
// not running when it was approved, say) is advanced all the same.
func (e *Engine) resync(tm *term) error {
	var ids []string
	var paused bool
	clock := e.now()
	err := e.store.View(func(tx *store.Tx) error {
		s, err := tx.Settings()
		if err != nil {
			return err
		}
		paused = s.Paused
		runs, err := tx.ActiveRuns()
		for _, r := range runs {
			st := nextStep(&r)
			if r.State == store.RunAwaitingApproval || st != nil && st.State != store.StepPending {
				continue
			}
			if settling, err := e.settling(tx, st, clock); err != nil || settling {
				continue
			}
			ids = append(ids, r.ID)
		}
		return err
	})
	if err == nil {
		e.m.Paused.Set(boolGauge(paused)) // the kill switch may be turned on any replica
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		if until, ok := e.held[id]; ok && now.Before(until) {
			continue
		}
		delete(e.held, id)
		if !e.executing[id] && e.unrecorded[id] == nil && tm.queue.NumRequeues(id) == 0 {
			tm.queue.Add(id)
		}
	}
	return err
}

// settling reports whether st is an approved step whose approval is less
// than approvalSettle old: a decision recorded on another replica holds
// the step as hold does for one recorded here.
func (e *Engine) settling(tx *store.Tx, st *store.Step, now time.Time) (bool, error) {
	if st == nil || st.ApprovalID == "" {
		return false, nil
	}
	a, err := tx.Approval(st.ApprovalID)
	if err != nil {
		return false, err
	}
	return a.State == store.ApprovalApproved && now.Before(a.DecidedAt.Add(e.approvalSettle)), nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package detect

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
)

// maxAbandoned is how many attempts of one probe may still be running past
// their deadline before the scheduler stops starting new ones for it: a
// probe that ignores its context costs at most this many goroutines.
const maxAbandoned = 1

// Attempt states, for the race between an attempt finishing and its
// deadline passing.
const (
	attemptRunning int32 = iota
	attemptFinished
	attemptAbandoned
)

// attempt runs one attempt of st's probe in its own goroutine under the
// probe's timeout and returns its result, or a failure when the deadline
// passes first. It also records the probe metrics, unless ctx itself was
// cancelled.
func (s *Scheduler) attempt(ctx context.Context, st *probeState) Result {
	start := s.now()
	r := s.runBounded(ctx, st)
	if r.CheckedAt.IsZero() {
		r.CheckedAt = start
	}
	if r.Duration <= 0 {
		r.Duration = s.now().Sub(start)
	}
	if r.Duration < 0 {
		r.Duration = 0
	}
	if !r.OK && r.Reason == "" {
		r.Reason = "probe failed without a reason"
	}
	// An attempt cut short by shutdown says nothing about the target.
	if m := s.opts.Metrics; m != nil && ctx.Err() == nil {
		ok := 0.0
		if r.OK {
			ok = 1
		}
		m.Success.WithLabelValues(st.p.Name, st.p.Type, st.p.Service).Set(ok)
		m.Duration.WithLabelValues(st.p.Name).Set(r.Duration.Seconds())
	}
	return r
}

// runBounded calls the probe's RunFunc in a goroutine and waits for it at
// most until the timeout. An attempt that outlives it is abandoned: its
// result is dropped when it finally arrives.
func (s *Scheduler) runBounded(ctx context.Context, st *probeState) Result {
	timeout := time.Duration(st.p.Timeout)
	if n := st.abandoned.Load(); n >= maxAbandoned {
		return Result{OK: false, CheckedAt: s.now(),
			Reason: fmt.Sprintf("a previous attempt is still running past its %s timeout; the target is hung", model.Duration(timeout))}
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var state atomic.Int32
	done := make(chan Result, 1)
	go func() {
		var r Result
		defer func() {
			if v := recover(); v != nil {
				r = Result{OK: false, Reason: fmt.Sprintf("probe panicked: %v", v)}
			}
			done <- r
			if !state.CompareAndSwap(attemptRunning, attemptFinished) {
				st.abandoned.Add(-1)
			}
		}()
		r = s.opts.Run(actx, st.p)
	}()

	select {
	case r := <-done:
		return r
	case <-actx.Done():
		if !state.CompareAndSwap(attemptRunning, attemptAbandoned) {
			// It finished just as the deadline passed: use its result.
			return <-done
		}
		st.abandoned.Add(1)
		reason := fmt.Sprintf("timed out after %s", model.Duration(timeout))
		if ctx.Err() != nil {
			reason = "cancelled: " + ctx.Err().Error()
		}
		s.log.Warn("probe attempt abandoned at its deadline", "probe", st.p.Name, "timeout", timeout.String())
		return Result{OK: false, Reason: reason, Duration: timeout}
	}
}

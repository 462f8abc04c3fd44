package detect

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// recorder collects emitted detections; failNext makes Emit refuse the
// next n detections.
type recorder struct {
	mu       sync.Mutex
	got      []Detection
	failNext int
	notify   chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1000)} }

func (r *recorder) emit(_ context.Context, d Detection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext > 0 {
		r.failNext--
		return errors.New("journal unavailable")
	}
	r.got = append(r.got, d)
	r.notify <- struct{}{}
	return nil
}

func (r *recorder) all() []Detection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Detection(nil), r.got...)
}

// statuses returns the statuses of the emitted detections in order.
func (r *recorder) statuses() []Status {
	var out []Status
	for _, d := range r.all() {
		out = append(out, d.Status)
	}
	return out
}

// waitFor waits until cond holds over the detections so far, or fails t.
func (r *recorder) waitFor(t *testing.T, within time.Duration, what string, cond func([]Detection) bool) []Detection {
	t.Helper()
	deadline := time.After(within)
	for {
		if got := r.all(); cond(got) {
			return got
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("no %s within %s; got %v", what, within, r.statuses())
		}
	}
}

// newFakeClock returns a settable clock.
func newFakeClock() *testharness.Clock {
	return testharness.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// firstWith returns the first detection with status st, or fails t.
func firstWith(t *testing.T, ds []Detection, st Status) Detection {
	t.Helper()
	for _, d := range ds {
		if d.Status == st {
			return d
		}
	}
	t.Fatalf("no %s detection among %d", st, len(ds))
	return Detection{}
}

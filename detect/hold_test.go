package detect

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// TestHoldStopsScheduledAttempts: a held probe makes no scheduled attempt
// (Verify still runs it); released, it is scheduled again; holding an
// unknown probe is an error.
func TestHoldStopsScheduledAttempts(t *testing.T) {
	var runs atomic.Int32
	p := testProbe("heartbeat", 10*time.Millisecond, 1, 1)
	s, err := NewScheduler(SchedulerOptions{Probes: []config.Probe{p}, NoJitter: true,
		Run: func(context.Context, config.Probe) Result {
			runs.Add(1)
			return Result{OK: true}
		},
		Emit: newRecorder().emit})
	if err != nil {
		t.Fatal(err)
	}
	release, err := s.Hold("heartbeat")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("a held probe ran %d times", n)
	}
	if r, err := s.Verify(ctx, "heartbeat", nil); err != nil || !r.OK || runs.Load() != 1 {
		t.Fatalf("Verify of a held probe: %+v, %v (runs %d)", r, err, runs.Load())
	}
	release()
	release() // idempotent: the hold count does not go negative
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("released probe ran %d times in 5s", runs.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.Hold("nope"); err == nil {
		t.Error("holding an unknown probe: no error")
	}
}

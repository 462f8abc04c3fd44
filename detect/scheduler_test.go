package detect

import (
	"context"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
)

func testProbe(name string, interval time.Duration, ft, st int) config.Probe {
	return config.Probe{Name: name, Type: "test", Target: "db1", Scenario: "database-down", Service: "shop",
		Severity: "critical", Interval: model.Duration(interval), Timeout: model.Duration(interval / 2),
		FailureThreshold: ft, SuccessThreshold: st}
}

// TestSchedulerHysteresis feeds sequences of results (F fail, O ok) through
// the thresholds and checks which detections are emitted.
func TestSchedulerHysteresis(t *testing.T) {
	cases := []struct {
		name   string
		ft, st int
		seq    string
		want   string // f firing, r resolved
		refuse int    // 1-based emission attempt that Emit refuses (journal down); 0 none
	}{
		{name: "below threshold", ft: 3, st: 1, seq: "FFOFFO", want: ""},
		{name: "fires at threshold once", ft: 3, st: 1, seq: "FFFFFF", want: "f"},
		{name: "fires and resolves", ft: 2, st: 1, seq: "FFFO", want: "fr"},
		{name: "success threshold", ft: 1, st: 3, seq: "FOOFOOO", want: "fr"},
		{name: "fires again after resolve", ft: 1, st: 1, seq: "FOFO", want: "frfr"},
		{name: "ok alone never resolves", ft: 2, st: 1, seq: "OOOO", want: ""},
		{name: "refused firing is retried", ft: 2, st: 1, seq: "FFFO", want: "fr", refuse: 1},
		{name: "refused resolve is retried", ft: 1, st: 1, seq: "FOOO", want: "fr", refuse: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			rec := newRecorder()
			p := testProbe("p", time.Second, tc.ft, tc.st)
			attempts := 0
			s, err := NewScheduler(SchedulerOptions{Probes: []config.Probe{p}, Now: clock.Now,
				Run: func(context.Context, config.Probe) Result { return Result{} },
				Emit: func(ctx context.Context, d Detection) error {
					if attempts++; attempts == tc.refuse {
						rec.failNext = 1
					}
					return rec.emit(ctx, d)
				}})
			if err != nil {
				t.Fatal(err)
			}
			st := s.byName["p"]
			var firstFail time.Time
			for _, c := range tc.seq {
				clock.Advance(time.Second)
				r := Result{OK: c == 'O', CheckedAt: clock.Now()}
				if !r.OK {
					r.Reason = "boom"
					if firstFail.IsZero() {
						firstFail = r.CheckedAt
					}
				}
				s.observe(context.Background(), st, r)
			}
			var got strings.Builder
			for _, d := range rec.all() {
				got.WriteByte(string(d.Status)[0])
			}
			if got.String() != tc.want {
				t.Fatalf("emitted %q, want %q", got.String(), tc.want)
			}
			if tc.want == "" {
				return
			}
			ds := rec.all()
			f := ds[0]
			if !f.StartsAt.Equal(firstFail) {
				t.Errorf("StartsAt = %v, want the first failure of the streak %v", f.StartsAt, firstFail)
			}
			wantLabels := map[string]string{"alertname": AlertNameProbeFailed, "probe": "p", "scenario": "database-down",
				"service": "shop", "target": "db1", "severity": "critical"}
			if !reflect.DeepEqual(f.Labels, wantLabels) {
				t.Errorf("labels = %v, want %v", f.Labels, wantLabels)
			}
			if f.Source != SourceProbe || f.Evidence == nil || f.Evidence.Reason != "boom" {
				t.Errorf("source %q evidence %+v", f.Source, f.Evidence)
			}
			if len(ds) > 1 {
				r := ds[1]
				if r.Fingerprint != f.Fingerprint || !r.StartsAt.Equal(f.StartsAt) || r.Key() != f.Key() {
					t.Errorf("resolved key %s differs from firing key %s", r.Key(), f.Key())
				}
				if r.EndsAt.IsZero() {
					t.Error("resolved detection has no EndsAt")
				}
			}
		})
	}
}

// TestSchedulerRefresh checks that a still-firing probe is re-emitted only
// every RefreshEvery intervals, with the same key.
func TestSchedulerRefresh(t *testing.T) {
	clock := newFakeClock()
	rec := newRecorder()
	p := testProbe("p", time.Second, 1, 1)
	s, err := NewScheduler(SchedulerOptions{Probes: []config.Probe{p}, Now: clock.Now, RefreshEvery: 5,
		Run: func(context.Context, config.Probe) Result { return Result{} }, Emit: rec.emit})
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		clock.Advance(time.Second)
		s.observe(context.Background(), s.byName["p"], Result{Reason: "down", CheckedAt: clock.Now()})
	}
	ds := rec.all()
	if len(ds) != 3 {
		t.Fatalf("%d emissions over 12 failing intervals with refresh every 5, want 3", len(ds))
	}
	for _, d := range ds[1:] {
		if d.Key() != ds[0].Key() || d.Status != StatusFiring {
			t.Errorf("refresh %s %s, want firing %s", d.Status, d.Key(), ds[0].Key())
		}
	}
}

// TestSchedulerHungTargetDoesNotDelayOthers runs a probe against a TCP
// listener that accepts and never answers, with a Run that ignores its
// context, next to a healthy probe: the healthy one keeps its pace, the hung
// one fails by timeout and fires, and its goroutines stay bounded.
func TestSchedulerHungTargetDoesNotDelayOthers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accept, never answer
		}
	}()
	var hungCalls, healthyCalls atomic.Int32
	run := func(ctx context.Context, p config.Probe) Result {
		if p.Name == "healthy" {
			healthyCalls.Add(1)
			return Result{OK: true}
		}
		hungCalls.Add(1)
		c, err := net.Dial("tcp", ln.Addr().String()) // ignores ctx on purpose
		if err != nil {
			return Result{Reason: err.Error()}
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = c.Read(make([]byte, 1))
		return Result{Reason: "read: " + err.Error()}
	}
	reg := prometheus.NewRegistry()
	m := metrics.NewProbes(reg)
	rec := newRecorder()
	hung := testProbe("hung", 100*time.Millisecond, 2, 1)
	hung.Timeout = model.Duration(50 * time.Millisecond)
	healthy := testProbe("healthy", 100*time.Millisecond, 2, 1)
	s, err := NewScheduler(SchedulerOptions{Probes: []config.Probe{hung, healthy}, Run: run, Emit: rec.emit,
		Metrics: m, NoJitter: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	start := time.Now()
	ds := rec.waitFor(t, 2*time.Second, "firing detection for the hung probe", func(ds []Detection) bool {
		return len(ds) > 0
	})
	if d := ds[0]; d.Labels["probe"] != "hung" || !strings.Contains(d.Evidence.Reason, "timed out") &&
		!strings.Contains(d.Evidence.Reason, "still running") {
		t.Errorf("detection %v: %q", d.Labels, d.Evidence.Reason)
	}
	time.Sleep(time.Second - time.Since(start))
	cancel()
	<-done
	elapsed := time.Since(start)
	if n, want := healthyCalls.Load(), int32(elapsed/(100*time.Millisecond))-1; n < want {
		t.Errorf("healthy probe ran %d times in %s, want at least %d", n, elapsed, want)
	}
	if n := hungCalls.Load(); n > 2 {
		t.Errorf("hung probe started %d attempts while its first was stuck, want at most %d", n, maxAbandoned+1)
	}
	if v := testutil.ToFloat64(m.Success.WithLabelValues("hung", "test", "shop")); v != 0 {
		t.Errorf("probe_success{hung} = %v, want 0", v)
	}
	if v := testutil.ToFloat64(m.Success.WithLabelValues("healthy", "test", "shop")); v != 1 {
		t.Errorf("probe_success{healthy} = %v, want 1", v)
	}
	if r, ok := s.LastResult("healthy"); !ok || !r.OK || r.CheckedAt.IsZero() {
		t.Errorf("LastResult(healthy) = %+v, %v", r, ok)
	}
}

// TestSchedulerRunFiresAndResolves drives the real loop: a probe fails
// until switched, fires after failure_threshold intervals and resolves.
func TestSchedulerRunFiresAndResolves(t *testing.T) {
	var healthy atomic.Bool
	rec := newRecorder()
	p := testProbe("flappy", 50*time.Millisecond, 3, 2)
	s, err := NewScheduler(SchedulerOptions{Probes: []config.Probe{p}, Emit: rec.emit,
		Run: func(ctx context.Context, p config.Probe) Result {
			if healthy.Load() {
				return Result{OK: true}
			}
			return Result{Reason: "down"}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	rec.waitFor(t, 2*time.Second, "firing", func(ds []Detection) bool { return len(ds) == 1 })
	// The scheduler records a transition only once Emit has accepted it, so
	// the status follows the detection shortly after.
	testharness.Eventually(t, 2*time.Second, "status firing", func() bool {
		st := s.Status()
		return len(st) == 1 && st[0].Firing
	})
	if st := s.Status(); len(st) != 1 || !st[0].Firing || st[0].ConsecutiveFailures < 3 {
		t.Errorf("status = %+v", st)
	}
	healthy.Store(true)
	ds := rec.waitFor(t, 2*time.Second, "resolved", func(ds []Detection) bool { return len(ds) == 2 })
	if ds[1].Status != StatusResolved || ds[1].Key() != ds[0].Key() {
		t.Errorf("second detection %s %s, want resolved %s", ds[1].Status, ds[1].Key(), ds[0].Key())
	}
	f := firstWith(t, ds, StatusFiring)
	if f.Evidence == nil || f.Evidence.CheckedAt.Before(f.StartsAt) {
		t.Errorf("evidence %+v predates StartsAt %v", f.Evidence, f.StartsAt)
	}
}

// TestSchedulerVerify checks the Verifier: a known probe runs once now
// without affecting its thresholds; an unknown one is an error.
func TestSchedulerVerify(t *testing.T) {
	var calls atomic.Int32
	rec := newRecorder()
	s, err := NewScheduler(SchedulerOptions{Probes: []config.Probe{testProbe("p", time.Minute, 1, 1)}, Emit: rec.emit,
		Run: func(context.Context, config.Probe) Result { calls.Add(1); return Result{Reason: "still down"} }})
	if err != nil {
		t.Fatal(err)
	}
	var v Verifier = s
	r, err := v.Verify(context.Background(), "p", map[string]string{"target": "db1"})
	if err != nil || r.OK || r.Reason != "still down" || calls.Load() != 1 {
		t.Errorf("Verify(p) = %+v, %v after %d calls", r, err, calls.Load())
	}
	if len(rec.all()) != 0 {
		t.Error("Verify emitted a detection")
	}
	if _, err := v.Verify(context.Background(), "nope", nil); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Verify(nope) error = %v", err)
	}
}

// TestNewSchedulerRejects checks option validation.
func TestNewSchedulerRejects(t *testing.T) {
	run := func(context.Context, config.Probe) Result { return Result{} }
	emit := func(context.Context, Detection) error { return nil }
	p := testProbe("p", time.Second, 1, 1)
	for name, o := range map[string]SchedulerOptions{
		"no run":    {Emit: emit},
		"no emit":   {Run: run},
		"duplicate": {Run: run, Emit: emit, Probes: []config.Probe{p, p}},
		"no name":   {Run: run, Emit: emit, Probes: []config.Probe{{Type: "http"}}},
	} {
		if _, err := NewScheduler(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSchedulerFiringCarriesLastKnownGood checks that a probe which passed
// before failing says when it last passed, for point-in-time restores.
func TestSchedulerFiringCarriesLastKnownGood(t *testing.T) {
	var failing atomic.Bool
	rec := newRecorder()
	p := testProbe("integrity", 30*time.Millisecond, 2, 1)
	s, err := NewScheduler(SchedulerOptions{Probes: []config.Probe{p}, Emit: rec.emit, NoJitter: true,
		Run: func(context.Context, config.Probe) Result {
			if failing.Load() {
				return Result{Reason: "orphan rows"}
			}
			return Result{OK: true}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if r, ok := s.LastResult("integrity"); ok && r.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("probe never passed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	failing.Store(true)
	ds := rec.waitFor(t, 2*time.Second, "firing", func(ds []Detection) bool { return len(ds) == 1 })
	lkg, err := time.Parse(time.RFC3339, ds[0].Annotations[AnnotationLastKnownGood])
	if err != nil {
		t.Fatalf("last_known_good annotation: %v (annotations %v)", err, ds[0].Annotations)
	}
	if lkg.After(ds[0].StartsAt) {
		t.Errorf("last known good %v is after the failure started %v", lkg, ds[0].StartsAt)
	}
}

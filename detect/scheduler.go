package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/metrics"
)

// AlertNameProbeFailed is the alertname label of every probe detection.
const AlertNameProbeFailed = "DrguardProbeFailed"

// DefaultRefreshEvery is how many intervals pass between re-emissions of a
// detection that is still firing.
const DefaultRefreshEvery = 10

// RunFunc runs one attempt of a probe and returns its result. It must honour
// ctx's deadline, but the scheduler does not rely on it: an attempt that
// outlives its timeout is abandoned and counted as a failure.
type RunFunc func(ctx context.Context, p config.Probe) Result

// EmitFunc hands a detection over for durable processing (the journal
// outbox). An error means the detection was not accepted; the scheduler
// keeps its state and emits again at the probe's next attempt, so a
// transition is never lost, only delayed.
type EmitFunc func(ctx context.Context, d Detection) error

// SchedulerOptions configures a Scheduler.
type SchedulerOptions struct {
	// Probes are the checks to run, with the configuration's defaults
	// applied (config.Load does; config.ApplyDefaults for probes built in
	// code); names must be unique.
	Probes []config.Probe
	// Run runs one attempt of a probe (probe.Env.Run in the daemon).
	Run RunFunc
	// Emit receives firing and resolved detections.
	Emit EmitFunc
	// Logger receives probe transitions; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics, when set, receives drguard_probe_success and
	// drguard_probe_duration_seconds for every attempt.
	Metrics *metrics.Probes
	// RefreshEvery is how many intervals pass between re-emissions of a
	// still-firing detection; 0 means DefaultRefreshEvery.
	RefreshEvery int
	// NoJitter starts every probe at once instead of at a random offset
	// within its first interval (for tests).
	NoJitter bool
}

// Scheduler runs probes on their intervals, applies failure and success
// thresholds, and emits a firing detection when a probe has failed
// failure_threshold times in a row and a resolved one after
// success_threshold successes. Each probe has its own goroutine and each
// attempt its own deadline, so one hung target never delays another probe.
type Scheduler struct {
	opts   SchedulerOptions
	log    *slog.Logger
	now    func() time.Time
	order  []*probeState
	byName map[string]*probeState

	mu      sync.Mutex
	running bool
}

var _ Verifier = (*Scheduler)(nil)

// NewScheduler checks the options and returns a scheduler that starts
// probing when Run is called. It applies no defaults of its own: a probe
// without an interval, timeout or thresholds is refused.
func NewScheduler(o SchedulerOptions) (*Scheduler, error) {
	if o.Run == nil {
		return nil, errors.New("scheduler: Run is required")
	}
	if o.Emit == nil {
		return nil, errors.New("scheduler: Emit is required")
	}
	s := &Scheduler{opts: o, log: o.Logger, now: o.Now, byName: make(map[string]*probeState, len(o.Probes))}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.RefreshEvery <= 0 {
		s.opts.RefreshEvery = DefaultRefreshEvery
	}
	for _, p := range o.Probes {
		if p.Name == "" {
			return nil, errors.New("scheduler: a probe has no name")
		}
		if _, dup := s.byName[p.Name]; dup {
			return nil, fmt.Errorf("scheduler: duplicate probe %q", p.Name)
		}
		if p.Interval <= 0 || p.Timeout <= 0 || p.FailureThreshold <= 0 || p.SuccessThreshold <= 0 {
			return nil, fmt.Errorf("scheduler: probe %q lacks its interval, timeout or thresholds (apply the configuration's defaults)", p.Name)
		}
		st := &probeState{p: p, fingerprint: Fingerprint(p)}
		s.order = append(s.order, st)
		s.byName[p.Name] = st
	}
	return s, nil
}

// Fingerprint returns the stable fingerprint of a probe's detections: the
// same for every firing and resolved detection of the probe as long as its
// name, type and target do not change.
func Fingerprint(p config.Probe) string {
	sum := sha256.Sum256([]byte("probe\x00" + p.Name + "\x00" + p.Type + "\x00" + p.Target))
	return hex.EncodeToString(sum[:8])
}

// Probes returns the names of the scheduled probes, sorted.
func (s *Scheduler) Probes() []string {
	names := make([]string, 0, len(s.order))
	for _, st := range s.order {
		names = append(names, st.p.Name)
	}
	sort.Strings(names)
	return names
}

// Run starts every probe's loop and blocks until ctx is done and every loop
// has returned. Attempts abandoned at their deadline are not waited for.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("scheduler: already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	var wg sync.WaitGroup
	for _, st := range s.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, st)
		}()
	}
	s.log.Info("probe scheduler started", "probes", len(s.order))
	wg.Wait()
	return nil
}

// loop runs one probe on its interval until ctx is done.
func (s *Scheduler) loop(ctx context.Context, st *probeState) {
	interval := time.Duration(st.p.Interval)
	var delay time.Duration
	if !s.opts.NoJitter {
		delay = rand.N(interval)
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if st.held.Load() == 0 {
			r := s.attempt(ctx, st)
			if ctx.Err() != nil {
				return
			}
			s.observe(ctx, st, r)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Verify runs the named probe once now and returns its result, without
// touching the probe's thresholds. The labels are not used: a probe
// checks the target it is configured for.
func (s *Scheduler) Verify(ctx context.Context, check string, _ map[string]string) (Result, error) {
	st, ok := s.byName[check]
	if !ok {
		return Result{}, fmt.Errorf("unknown probe %q", check)
	}
	r := s.attempt(ctx, st)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	return r, nil
}

// LastResult returns the result of the named probe's last scheduled
// attempt; false when the probe is unknown or has not run yet.
func (s *Scheduler) LastResult(name string) (Result, bool) {
	st, ok := s.byName[name]
	if !ok {
		return Result{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.last, st.hasLast
}

// ProbeStatus is a probe's scheduling state, for the API.
type ProbeStatus struct {
	Name                 string    `json:"name"`
	Type                 string    `json:"type"`
	Target               string    `json:"target"`
	Firing               bool      `json:"firing"`
	FiringSince          time.Time `json:"firingSince,omitzero"`
	ConsecutiveFailures  int       `json:"consecutiveFailures"`
	ConsecutiveSuccesses int       `json:"consecutiveSuccesses"`
	Last                 *Result   `json:"last,omitempty"`
}

// Status returns every probe's scheduling state, sorted by name.
func (s *Scheduler) Status() []ProbeStatus {
	out := make([]ProbeStatus, 0, len(s.order))
	for _, st := range s.order {
		st.mu.Lock()
		ps := ProbeStatus{Name: st.p.Name, Type: st.p.Type, Target: st.p.Target, Firing: st.firing,
			ConsecutiveFailures: st.fails, ConsecutiveSuccesses: st.oks}
		if st.firing {
			ps.FiringSince = st.startsAt
		}
		if st.hasLast {
			last := st.last
			ps.Last = &last
		}
		st.mu.Unlock()
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

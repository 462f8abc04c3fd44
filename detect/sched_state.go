package detect

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// probeState is one probe's hysteresis state. Its loop is the only writer
// of the counters; the mutex lets LastResult and Status read them.
type probeState struct {
	p           config.Probe
	fingerprint string
	// abandoned counts attempts still running past their deadline.
	abandoned atomic.Int32
	// held counts the holds on the probe's scheduled attempts (Hold).
	held atomic.Int32

	mu sync.Mutex
	// fails and oks are the lengths of the current failure and success
	// streaks; streakStart is when the current failure streak began.
	fails, oks  int
	streakStart time.Time
	// firing is true once a firing detection was accepted by Emit, until
	// a resolved one is; startsAt is that detection's start.
	firing   bool
	startsAt time.Time
	lastEmit time.Time
	last     Result
	hasLast  bool
	// lastPass is when the probe last passed: a firing detection carries
	// it as the last_known_good annotation (point-in-time restores use it).
	lastPass time.Time
}

// transition is what a result asks the scheduler to emit, if anything.
type transition int

const (
	transitionNone transition = iota
	transitionFire
	transitionRefresh
	transitionResolve
)

// step records r in the state and says which detection, if any, is due.
// The state that the emission would change (firing, startsAt, lastEmit)
// is changed only by commit, after Emit has accepted the detection, so a
// refused emission is retried at the next attempt.
func (st *probeState) step(r Result, now time.Time, refresh time.Duration) transition {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.last, st.hasLast = r, true
	if r.OK {
		st.lastPass = r.CheckedAt
	}
	if !r.OK {
		st.oks = 0
		st.fails++
		if st.fails == 1 {
			st.streakStart = r.CheckedAt
		}
		switch {
		case !st.firing && st.fails >= st.p.FailureThreshold:
			return transitionFire
		case st.firing && now.Sub(st.lastEmit) >= refresh:
			return transitionRefresh
		}
		return transitionNone
	}
	st.fails = 0
	if !st.firing {
		st.oks = 0
		return transitionNone
	}
	st.oks++
	if st.oks >= st.p.SuccessThreshold {
		return transitionResolve
	}
	return transitionNone
}

// commit records that the detection for tr was emitted.
func (st *probeState) commit(tr transition, startsAt, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch tr {
	case transitionFire:
		st.firing, st.startsAt, st.lastEmit = true, startsAt, now
	case transitionRefresh:
		st.lastEmit = now
	case transitionResolve:
		st.firing, st.oks = false, 0
	}
}

// observe feeds a scheduled attempt's result through the thresholds and
// emits the detection that is due.
func (s *Scheduler) observe(ctx context.Context, st *probeState, r Result) {
	now := s.now()
	refresh := time.Duration(s.opts.RefreshEvery) * time.Duration(st.p.Interval)
	tr := st.step(r, now, refresh)
	if tr == transitionNone {
		return
	}
	st.mu.Lock()
	startsAt := st.startsAt
	if tr == transitionFire {
		startsAt = st.streakStart
	}
	lastPass := st.lastPass
	st.mu.Unlock()
	d := s.detection(st, tr, startsAt, r)
	if d.Status == StatusFiring && !lastPass.IsZero() {
		d.Annotations[AnnotationLastKnownGood] = lastPass.UTC().Format(time.RFC3339)
	}
	if err := s.opts.Emit(ctx, d); err != nil {
		s.log.Error("probe detection not accepted; will retry at the next attempt",
			"probe", st.p.Name, "status", string(d.Status), "err", err)
		return
	}
	st.commit(tr, startsAt, now)
	switch tr {
	case transitionFire:
		s.log.Warn("probe failing", "probe", st.p.Name, "target", st.p.Target,
			"failures", st.p.FailureThreshold, "reason", r.Reason)
	case transitionResolve:
		s.log.Info("probe recovered", "probe", st.p.Name, "target", st.p.Target)
	}
}

// AnnotationLastKnownGood names the annotation of a firing probe detection
// that holds when the probe last passed (RFC 3339).
const AnnotationLastKnownGood = "last_known_good"

// detection builds the detection for a transition of st's probe.
func (s *Scheduler) detection(st *probeState, tr transition, startsAt time.Time, r Result) Detection {
	p := st.p
	labels := map[string]string{LabelAlertName: AlertNameProbeFailed, LabelProbe: p.Name}
	for k, v := range map[string]string{
		LabelScenario: p.Scenario, LabelService: p.Service, LabelTarget: p.Target, LabelSeverity: p.Severity,
	} {
		if v != "" {
			labels[k] = v
		}
	}
	evidence := r
	d := Detection{
		Source:      SourceProbe,
		Fingerprint: st.fingerprint,
		Status:      StatusFiring,
		StartsAt:    startsAt,
		Labels:      labels,
		Evidence:    &evidence,
		Annotations: map[string]string{
			"summary": fmt.Sprintf("probe %s (%s) failed %d times in a row on %s: %s",
				p.Name, p.Type, p.FailureThreshold, targetOrNone(p.Target), r.Reason),
			"reason": r.Reason,
		},
	}
	if tr == transitionResolve {
		d.Status = StatusResolved
		d.EndsAt = r.CheckedAt
		d.Annotations = map[string]string{
			"summary": fmt.Sprintf("probe %s (%s) passes again on %s (%d in a row)",
				p.Name, p.Type, targetOrNone(p.Target), p.SuccessThreshold),
		}
	}
	return d
}

func targetOrNone(t string) string {
	if t == "" {
		return "(no target)"
	}
	return t
}

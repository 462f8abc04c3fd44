package remediate

import (
	"errors"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// block is a guardrail's refusal: the metric result it counts as and the
// reason journaled on the run and step.
type block struct {
	guardrail string // paused, active_run, cooldown, max_runs, destructive_budget
	result    string // metrics.ResultBlocked*
	reason    string
}

// checkRun applies the run-level guardrails to a new run of p for target:
// the kill switch, one active run per (policy, target), the cooldown since
// the last run started and the max_runs window. It reads the journal only.
func (t *txn) checkRun(p *policy, target string) (*block, error) {
	s, err := t.tx.Settings()
	if err != nil {
		return nil, err
	}
	if s.Paused {
		return pausedBlock(s), nil
	}
	g, err := t.tx.Guard(guardKey(p.cfg.Name, target))
	if err != nil {
		return nil, err
	}
	if g.ActiveRunID != "" {
		r, err := t.tx.Run(g.ActiveRunID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		case r.Active():
			return &block{guardrail: "active_run", result: metrics.ResultBlockedActive,
				reason: fmt.Sprintf("active run: %s is still %s for policy %q on target %q", r.ID, r.State, p.cfg.Name, target)}, nil
		}
	}
	if cd := time.Duration(p.cfg.Cooldown); cd > 0 && !g.LastRunAt.IsZero() && t.now.Sub(g.LastRunAt) < cd {
		return &block{guardrail: "cooldown", result: metrics.ResultBlockedCooldown,
			reason: fmt.Sprintf("cooldown: last run %s ago, cooldown %s", fmtDuration(t.now.Sub(g.LastRunAt)), fmtDuration(cd))}, nil
	}
	if mr := p.cfg.MaxRuns; mr != nil && mr.Count > 0 && mr.Window > 0 {
		n := len(within(g.RunTimes, t.now, time.Duration(mr.Window)))
		if n >= mr.Count {
			return &block{guardrail: "max_runs", result: metrics.ResultBlockedMaxRuns,
				reason: fmt.Sprintf("max_runs: %d runs in the last %s, limit %d", n, fmtDuration(time.Duration(mr.Window)), mr.Count)}, nil
		}
	}
	return nil, nil
}

// recordRunStart persists that a run of p for target started now: it is
// the active run, the cooldown starts, and it counts in the max_runs
// window.
func (t *txn) recordRunStart(p *policy, target, runID string) error {
	g, err := t.tx.Guard(guardKey(p.cfg.Name, target))
	if err != nil {
		return err
	}
	g.ActiveRunID = runID
	g.LastRunAt = t.now
	keep := 24 * time.Hour
	if mr := p.cfg.MaxRuns; mr != nil && time.Duration(mr.Window) > keep {
		keep = time.Duration(mr.Window)
	}
	g.RunTimes = append(within(g.RunTimes, t.now, keep), t.now)
	return t.tx.PutGuard(g)
}

// checkStep applies the step-level guardrails just before a step starts:
// the kill switch, and for a destructive step the global budget, which it
// consumes when the step may go ahead.
func (t *txn) checkStep(st *store.Step) (*block, error) {
	s, err := t.tx.Settings()
	if err != nil {
		return nil, err
	}
	if s.Paused {
		return pausedBlock(s), nil
	}
	if !st.Destructive {
		return nil, nil
	}
	g := t.e.cfg.Guardrails
	window := time.Duration(g.DestructiveWindow)
	recent := within(s.DestructiveTimes, t.now, window)
	if len(recent) >= g.DestructiveBudget {
		return &block{guardrail: "destructive_budget", result: metrics.ResultBlockedBudget,
			reason: fmt.Sprintf("destructive budget: %d destructive steps in the last %s, budget %d", len(recent), fmtDuration(window), g.DestructiveBudget)}, nil
	}
	s.DestructiveTimes = append(recent, t.now)
	return nil, t.tx.PutSettings(s)
}

func pausedBlock(s store.Settings) *block {
	reason := "paused: remediation is paused"
	if s.PausedBy != "" {
		reason = fmt.Sprintf("paused: remediation paused by %s at %s", s.PausedBy, s.PausedAt.UTC().Format(time.RFC3339))
	}
	return &block{guardrail: "paused", result: metrics.ResultBlockedPaused, reason: reason}
}

// within returns the times no older than window before now.
func within(times []time.Time, now time.Time, window time.Duration) []time.Time {
	out := make([]time.Time, 0, len(times))
	for _, ts := range times {
		if now.Sub(ts) < window {
			out = append(out, ts)
		}
	}
	return out
}

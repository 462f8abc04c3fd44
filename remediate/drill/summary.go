package drill

import (
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// Summary is a configured drill and its last result.
type Summary struct {
	Drill       string         `json:"drill"`
	Scenario    string         `json:"scenario"`
	Policies    []string       `json:"policies"`
	Objective   string         `json:"objective"`
	Injection   string         `json:"injection"`
	AutoApprove bool           `json:"autoApprove"`
	Schedule    *ScheduleState `json:"schedule,omitempty"`
	// Running is the run in progress, if any.
	Running string `json:"running,omitempty"`
	// Last is the last run that ended.
	Last *Result `json:"last,omitempty"`
}

// ScheduleState is when a scheduled drill is due.
type ScheduleState struct {
	EverySeconds    float64   `json:"everySeconds"`
	AnnounceSeconds float64   `json:"announceSeconds"`
	LastSuccess     time.Time `json:"lastSuccess,omitzero"`
	DueAt           time.Time `json:"dueAt"`
	Overdue         bool      `json:"overdue"`
}

// Result is a drill run's outcome, as the list of drills shows it.
type Result struct {
	ID         string             `json:"id"`
	State      string             `json:"state"`
	Reason     string             `json:"reason,omitempty"`
	StartedAt  time.Time          `json:"startedAt"`
	EndedAt    time.Time          `json:"endedAt"`
	RTOSeconds *float64           `json:"rtoSeconds,omitempty"`
	RPOSeconds *float64           `json:"rpoSeconds,omitempty"`
	Checklist  []store.DrillCheck `json:"checklist"`
}

// Summaries returns every configured drill with its last result, in
// configuration order.
func (r *Runner) Summaries() ([]Summary, error) {
	last, lastOK, err := r.lastRuns()
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := make([]Summary, 0, len(r.o.Config.Drills))
	for _, d := range r.o.Config.Drills {
		s := Summary{Drill: d.Name, Scenario: d.Scenario, Policies: d.AllPolicies(), Objective: d.Objective,
			Injection: d.Inject.String(), AutoApprove: d.AutoApprove}
		if sc := d.Schedule; sc != nil {
			var ann store.DrillAnnouncement
			if err := r.o.Store.View(func(tx *store.Tx) error {
				ann, err = tx.DrillAnnouncement(d.Name)
				return err
			}); err != nil {
				return nil, err
			}
			due := dueAt(d, lastOK[d.Name], ann, now)
			s.Schedule = &ScheduleState{EverySeconds: time.Duration(sc.Every).Seconds(), AnnounceSeconds: time.Duration(sc.Announce).Seconds(),
				LastSuccess: lastOK[d.Name].EndedAt, DueAt: due, Overdue: !now.Before(due)}
		}
		r.mu.Lock()
		if x := r.active[d.Name]; x != nil {
			s.Running = x.run.ID
		}
		r.mu.Unlock()
		if l, ok := last[d.Name]; ok {
			s.Last = resultOf(l)
		}
		out = append(out, s)
	}
	return out, nil
}

// resultOf summarises a drill run.
func resultOf(d store.DrillRun) *Result {
	res := &Result{ID: d.ID, State: d.State, Reason: d.Reason, StartedAt: d.StartedAt, EndedAt: d.EndedAt, Checklist: d.Checklist}
	if d.RTO != nil {
		res.RTOSeconds = &d.RTO.Seconds
	}
	if d.RPO != nil {
		res.RPOSeconds = &d.RPO.Seconds
	}
	if res.Checklist == nil {
		res.Checklist = []store.DrillCheck{}
	}
	return res
}

// lastRuns returns, per drill, its last ended run and its last passed run.
func (r *Runner) lastRuns() (last, passed map[string]store.DrillRun, err error) {
	last, passed = map[string]store.DrillRun{}, map[string]store.DrillRun{}
	err = r.o.Store.View(func(tx *store.Tx) error {
		return tx.ForEachDrillRun(func(d store.DrillRun) error {
			if d.Active() {
				return nil
			}
			last[d.Drill] = d // runs are visited oldest first
			if d.Passed() {
				passed[d.Drill] = d
			}
			return nil
		})
	})
	return last, passed, err
}

// syncMetrics sets the drill metrics from the journal: the configured
// periods and objectives, and every drill's last results.
func (r *Runner) syncMetrics() error {
	last, passed, err := r.lastRuns()
	if err != nil {
		return fmt.Errorf("drills: %w", err)
	}
	m := r.o.Metrics
	for _, d := range r.o.Config.Drills {
		o := r.o.Config.Objectives[d.Objective]
		m.RTOObjective.WithLabelValues(d.Name).Set(time.Duration(o.RTO).Seconds())
		m.RPOObjective.WithLabelValues(d.Name).Set(time.Duration(o.RPO).Seconds())
		m.Running.WithLabelValues(d.Name).Set(0)
		if d.Schedule != nil {
			m.Period.WithLabelValues(d.Name, d.Scenario).Set(time.Duration(d.Schedule.Every).Seconds())
		}
		m.LastSuccess.WithLabelValues(d.Name, d.Scenario).Add(0) // "never" is a value rules can see
		if p, ok := passed[d.Name]; ok {
			m.LastSuccess.WithLabelValues(d.Name, d.Scenario).Set(unix(p.EndedAt))
		}
		if l, ok := last[d.Name]; ok {
			r.setResultMetrics(d, l)
		}
	}
	return nil
}

// setResultMetrics exports the results of a drill's run that ended.
func (r *Runner) setResultMetrics(d config.Drill, run store.DrillRun) {
	m := r.o.Metrics
	m.LastRun.WithLabelValues(d.Name, d.Scenario).Set(unix(run.EndedAt))
	if run.Passed() {
		m.LastSuccess.WithLabelValues(d.Name, d.Scenario).Set(unix(run.EndedAt))
	}
	if run.RTO != nil {
		m.RTO.WithLabelValues(d.Name).Set(run.RTO.Seconds)
	} else {
		m.RTO.DeleteLabelValues(d.Name)
	}
	if run.RPO != nil {
		m.RPO.WithLabelValues(d.Name).Set(run.RPO.Seconds)
	} else {
		m.RPO.DeleteLabelValues(d.Name)
	}
	for _, c := range run.Checklist {
		ok := 0.0
		if c.Status == store.CheckPass {
			ok = 1
		}
		m.ChecklistOK.WithLabelValues(d.Name, c.Item).Set(ok)
	}
}

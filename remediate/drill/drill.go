// Package drill runs the plan's disaster-recovery drills inside the daemon
// and checks them beforehand. A drill announces itself, injects a real
// failure (or a synthetic detection), lets the normal path detect it (a
// probe or an Alertmanager webhook opens the incident, which the drill
// claims through the engine), starts its policies' runs as their
// requester, approves their gated steps when configured to (four-eyes
// refuses it), waits for recovered_when, and measures the RTO (with its
// phases) and the RPO (from the heartbeat) against the objective, with the
// plan's testing checklist. Everything is journaled as a store.DrillRun.
//
// It drives the engine (remediate) and never acts on its own beyond the
// injection steps and its announcements.
package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// Errors of Start, Abort and Get; callers test them with errors.Is.
var (
	// ErrNotFound: no such drill or drill run.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the drill is already running, drguard may not inject
	// now (dry run, remediation paused), or the run has ended.
	ErrConflict = errors.New("conflict")
)

// Prober runs a probe now and holds a probe's scheduled attempts: the
// daemon's probe scheduler.
type Prober interface {
	detect.Verifier
	Hold(name string) (release func(), err error)
}

// Catalog lists a backup's manifests (the backup service's).
type Catalog interface {
	Catalog(ctx context.Context, name string) ([]backup.Manifest, error)
}

// Options configure a Runner.
type Options struct {
	Store  *store.Store
	Engine *remediate.Engine
	Config *config.Config
	// Prober is the probe scheduler: recovered_when is run through it,
	// and the heartbeat writers are held while the RPO is measured.
	Prober Prober
	// Actions run the injection steps (the engine's actions).
	Actions map[string]action.Action
	// Notifiers announce drills; nil builds them from Config.
	Notifiers *action.Notifiers
	// Backups lists backups, to tell a restored backup from its heartbeat;
	// nil leaves that evidence out.
	Backups Catalog
	Metrics *metrics.Drills
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tick is how often a drill looks at its runs and recovered_when, and
	// ScheduleTick how often schedules are checked. Defaults 250ms, 1m.
	Tick, ScheduleTick time.Duration
}

// Runner runs drills. It is safe for concurrent use.
type Runner struct {
	o   Options
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex
	// active maps a drill's name to its running execution.
	active map[string]*execution
	wg     sync.WaitGroup
	// ctx is cancelled when Run's context ends: drills end with it.
	ctx  context.Context
	stop context.CancelFunc
}

// New checks the options and returns a Runner. It does no I/O.
func New(o Options) (*Runner, error) {
	if o.Store == nil || o.Engine == nil || o.Config == nil || o.Prober == nil {
		return nil, errors.New("drill: a store, an engine, a config and a prober are required")
	}
	if o.Notifiers == nil {
		o.Notifiers = action.NewNotifiers(o.Config, nil)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewDrills(prometheus.NewRegistry())
	}
	if o.Tick <= 0 {
		o.Tick = 250 * time.Millisecond
	}
	if o.ScheduleTick <= 0 {
		o.ScheduleTick = time.Minute
	}
	r := &Runner{o: o, log: o.Logger, now: o.Now, active: map[string]*execution{}}
	r.ctx, r.stop = context.WithCancel(context.Background())
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Recover ends the drills a previous process left running (interrupted:
// the injected failure may still be in place, and their runs go on as an
// incident's would), starts the runs of drill incidents that never got
// one, and sets the drill metrics from the journal. The daemon calls it
// before it serves.
func (r *Runner) Recover(ctx context.Context) error {
	var interrupted []store.DrillRun
	err := r.o.Store.Update(func(tx *store.Tx) error {
		return tx.ForEachDrillRun(func(d store.DrillRun) error {
			if !d.Active() {
				return nil
			}
			d.State, d.EndedAt = store.DrillInterrupted, r.now().UTC()
			d.Reason = "drguard stopped during the drill; the injected failure may still be in place and the drill's runs go on as an incident's would"
			d.Log = append(d.Log, store.Event{Time: d.EndedAt, Kind: "interrupted", Message: d.Reason})
			interrupted = append(interrupted, d)
			return tx.PutDrillRun(&d)
		})
	})
	if err != nil {
		return fmt.Errorf("drills: %w", err)
	}
	for _, d := range interrupted {
		r.log.Warn("drill interrupted by a restart", "drill", d.Drill, "run", d.ID)
		if dr, ok := r.o.Config.Drill(d.Drill); ok {
			r.announce(ctx, dr, &d, "end")
			if err := r.o.Store.Update(func(tx *store.Tx) error { return tx.PutDrillRun(&d) }); err != nil {
				return fmt.Errorf("drills: %w", err)
			}
		}
	}
	if err := r.startOrphans(ctx); err != nil {
		return err
	}
	return r.syncMetrics()
}

// startOrphans starts, requested by their drill, the runs of open drill
// incidents that have none: a drill that stopped between claiming an
// incident and starting its runs must not leave a real failure alone.
func (r *Runner) startOrphans(ctx context.Context) error {
	var orphans []store.Incident
	err := r.o.Store.View(func(tx *store.Tx) error {
		return tx.ForEachIncident(func(in store.Incident) error {
			if in.Labels[remediate.LabelDrill] != "" && in.State == store.IncidentOpen &&
				in.AlertStatus == string(detect.StatusFiring) && len(in.RunIDs) == 0 {
				orphans = append(orphans, in)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("drills: %w", err)
	}
	for _, in := range orphans {
		d, ok := r.o.Config.Drill(in.Labels[remediate.LabelDrill])
		if !ok {
			continue
		}
		for _, p := range matchingPolicies(r.o.Config, d, in.Labels) {
			_, err := r.o.Engine.StartRun(ctx, remediate.RunRequest{IncidentID: in.ID, Policy: p, RequestedBy: Requester(d.Name)})
			r.log.Warn("started the run of a drill incident left without one", "incident", in.ID, "policy", p, "err", err)
		}
	}
	return nil
}

// Run checks the drills' schedules until ctx ends, then waits for the
// drills in progress to stop (they end interrupted when drguard stops).
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(r.o.ScheduleTick)
	defer t.Stop()
	for {
		r.checkSchedules(ctx)
		select {
		case <-ctx.Done():
			r.stop()
			r.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// Requester is the name a drill requests its runs under: drill:NAME.
func Requester(drill string) string { return config.DrillActorPrefix + drill }

// Start journals a new run of the named drill and executes it in the
// background; it returns the run as journaled (202). It returns ErrNotFound
// for an unknown drill and ErrConflict when the drill is already running
// or drguard may not inject a failure now (dry run, remediation paused).
func (r *Runner) Start(ctx context.Context, name, actor, remote string) (store.DrillRun, error) {
	d, ok := r.o.Config.Drill(name)
	if !ok {
		return store.DrillRun{}, fmt.Errorf("%w: drill %q is not configured", ErrNotFound, name)
	}
	if dry, why := r.o.Engine.DryRun(); dry {
		return store.DrillRun{}, fmt.Errorf("%w: %s; a drill would inject a failure that nothing recovers from", ErrConflict, why)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if x := r.active[name]; x != nil {
		return store.DrillRun{}, fmt.Errorf("%w: drill %s is already running as %s", ErrConflict, name, x.run.ID)
	}
	x, err := r.begin(ctx, d, actor, remote)
	if err != nil {
		return store.DrillRun{}, err
	}
	r.active[name] = x
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		x.execute()
		r.mu.Lock()
		delete(r.active, name)
		r.mu.Unlock()
	}()
	return x.snapshot(), nil
}

// Abort stops a running drill on behalf of actor: its runs stop at their
// next step (one waiting for an approval is rejected), and the drill ends
// aborted once they have. It returns ErrNotFound for an unknown run and
// ErrConflict for one that has ended.
func (r *Runner) Abort(ctx context.Context, id, actor, remote string) (store.DrillRun, error) {
	run, err := r.Get(id)
	if err != nil {
		return run, err
	}
	r.mu.Lock()
	x := r.active[run.Drill]
	r.mu.Unlock()
	if !run.Active() || x == nil || x.snapshot().ID != id {
		return run, fmt.Errorf("%w: drill run %s is %s", ErrConflict, id, run.State)
	}
	x.abort(ctx, actor, remote)
	return x.snapshot(), nil
}

// Get reads a drill run from the journal.
func (r *Runner) Get(id string) (store.DrillRun, error) {
	var run store.DrillRun
	err := r.o.Store.View(func(tx *store.Tx) error {
		var err error
		run, err = tx.DrillRun(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return run, fmt.Errorf("%w: drill run %q", ErrNotFound, id)
	}
	return run, err
}

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

// unix is t in seconds since the epoch.
func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

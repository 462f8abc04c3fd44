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
	// ErrNotLeader: this replica does not lead; only the leader runs
	// drills (ask it: /readyz names it).
	ErrNotLeader = errors.New("not the leader")
)

// Journal is where a Runner writes: the leader's fenced journal, so that a
// deposed leader's late drill records are refused.
type Journal interface {
	Update(fn func(*store.Tx) error) error
}

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
	// Store is read; writes go to Journal (default: Store itself).
	Store   *store.Store
	Journal Journal
	Engine  *remediate.Engine
	Config  *config.Config
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
	// ctx is the current term's (Run's): drills end with it. leading says
	// whether a term is on, so that Start may begin a drill.
	ctx     context.Context
	stop    context.CancelFunc
	leading bool
}

// New checks the options and returns a Runner. It does no I/O.
func New(o Options) (*Runner, error) {
	if o.Store == nil || o.Engine == nil || o.Config == nil || o.Prober == nil {
		return nil, errors.New("drill: a store, an engine, a config and a prober are required")
	}
	if o.Journal == nil {
		o.Journal = o.Store
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
// one, and sets the drill metrics from the journal. Run calls it at the
// start of every leadership term.
func (r *Runner) Recover(ctx context.Context) error {
	var interrupted []store.DrillRun
	err := r.o.Journal.Update(func(tx *store.Tx) error {
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
			if err := r.o.Journal.Update(func(tx *store.Tx) error { return tx.PutDrillRun(&d) }); err != nil {
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

// Run is one leadership term of the drills: once the engine leads, it
// recovers (Recover), takes drills (Start) and checks their schedules
// until ctx ends, then waits for the drills in progress to stop (they end
// interrupted when the term ends).
func (r *Runner) Run(ctx context.Context) error {
	for !r.o.Engine.Leading() { // the runs a recovery starts are the engine's writes
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := r.Recover(tctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.ctx, r.stop, r.leading = tctx, stop, true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.leading = false
		r.mu.Unlock()
		stop()
		r.wg.Wait()
	}()
	t := time.NewTicker(r.o.ScheduleTick)
	defer t.Stop()
	for {
		r.checkSchedules(tctx)
		select {
		case <-tctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Leading reports whether a term is on: whether Start may begin a drill.
func (r *Runner) Leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
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
	if !r.leading {
		return store.DrillRun{}, fmt.Errorf("%w: this replica does not run drills now; start it on the leader", ErrNotLeader)
	}
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

// unix is t in seconds since the epoch.
func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

package app

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/leader"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// lead runs the leader-only components for one term of lease l: the
// remediation engine (outbox, steps, approval expiry, corroboration), the
// probe scheduler and the watchdog monitor (which raise detections), the
// backup scheduler (backups, retention, restore tests), the status
// updates, the drills, the journal's retention and the Slack app's reconciliation
// (approval requests posted once, not once per replica; every replica takes Slack's
// button presses). Every journal write they make is fenced by l. The first to fail
// ends the term; the elector ends it when the lease is lost.
func (a *App) lead(ctx context.Context, l store.Lease) error {
	g, _ := startAll(ctx, []component{
		{"engine", func(ctx context.Context) error { return a.engine.Lead(ctx, &l) }},
		{"probe scheduler", a.sched.Run},
		{"watchdogs", a.watchdogs.Run},
		{"backups", a.backups.Run},
		{"status updates", a.updates.Run},
		{"slack app", a.web.runSlack},
		{"drills", a.drills.Run},
		{"journal retention", a.retention.Run},
	})
	return g.Wait()
}

// component is a part of the daemon that runs until its context ends.
type component struct {
	name string
	run  func(context.Context) error
}

// startAll runs the components in an errgroup: the first to fail cancels
// the group's context (returned), and Wait returns its error, named.
func startAll(ctx context.Context, cs []component) (*errgroup.Group, context.Context) {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range cs {
		g.Go(func() error {
			if err := c.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	return g, gctx
}

// leaderOnlyMetrics are the metrics that only the leader keeps current;
// a replica that stops leading drops their series.
type leaderOnlyMetrics struct {
	remediation *metrics.Remediation
	probes      *metrics.Probes
	backups     *metrics.Backups
	watchdogs   *metrics.Watchdogs
}

func (m leaderOnlyMetrics) forget() {
	metrics.ForgetLeaderOnly(m.remediation, m.probes, m.backups, m.watchdogs)
}

// newWatchdogMonitor builds the monitor of the configured watchdogs,
// writing through the leader's fenced journal.
func newWatchdogMonitor(cfg *config.Config, st *store.Store, el *leader.Elector, emit detect.EmitFunc, m *metrics.Watchdogs, log *slog.Logger) (*detect.WatchdogMonitor, error) {
	wd, err := detect.CompileWatchdogs(cfg.Watchdogs)
	if err != nil {
		return nil, err
	}
	return detect.NewWatchdogMonitor(detect.WatchdogMonitorOptions{Watchdogs: wd, Store: st, Journal: el.Journal(), Emit: emit,
		Metrics: m, Logger: log.With("component", "watchdogs")})
}

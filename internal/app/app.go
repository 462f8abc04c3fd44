// Package app wires drguard together: configuration, journal, metrics,
// remediation engine and HTTP API. Tests start it in-process with New and
// Run; cmd/drguard only parses flags and signals.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/kubeclient"
	"github.com/fruitfulplanet/drguard/internal/leader"
	"github.com/fruitfulplanet/drguard/internal/pitr"
	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
	"github.com/fruitfulplanet/drguard/remediate/drill"
)

// Options configure an App. Zero values take the configuration's settings.
type Options struct {
	Config        *config.Config
	ListenAddress string // overrides server.listen_address
	StoragePath   string // overrides storage.path
	DryRun        bool   // global dry run, on top of guardrails.dry_run
	// WebConfigFile is exporter-toolkit's web configuration (TLS, client
	// certificates, basic-auth users); empty serves plain HTTP.
	WebConfigFile string
	Logger        *slog.Logger
	// Registry receives every metric; nil creates a fresh one.
	Registry *prometheus.Registry
}

// App is a running drguard daemon.
type App struct {
	cfg     *config.Config
	log     *slog.Logger
	store   *store.Store
	engine  *remediate.Engine
	elector *leader.Elector
	// watchdogs raises detections of missing dead-man switches.
	watchdogs *detect.WatchdogMonitor
	// leaderOnly are the metrics only the leader keeps current.
	leaderOnly leaderOnlyMetrics
	sched      *detect.Scheduler
	updates    *remediate.StatusUpdater
	backups    *backup.Service
	pitr       *pitr.Poller
	drills     *drill.Runner
	probes     probe.Env
	http       *http.Server
	listener   net.Listener
	registry   *prometheus.Registry
	// webConfig is Options.WebConfigFile.
	webConfig string
	// web is the console, the event stream and the Slack app.
	web *webParts
	// retention compacts the journal (leader only).
	retention *retention
}

// New opens the journal, builds the engine and binds the listener. The
// caller must call Run (which closes everything when it returns) or Close.
func New(o Options) (*App, error) {
	cfg := o.Config
	if cfg == nil {
		return nil, errors.New("no configuration")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := ValidateWebConfig(o.WebConfigFile); err != nil {
		return nil, err
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics.NewBuildInfo(reg, Version, Revision(), runtime.Version())

	path := cfg.Storage.Path
	if o.StoragePath != "" {
		path = o.StoragePath
	}
	st, err := openJournal(cfg, path)
	if err != nil {
		return nil, err
	}
	probeMetrics := metrics.NewProbes(reg)
	objectives := metrics.NewObjectives(reg, cfg.Objectives)
	lo := leaderOnlyMetrics{remediation: metrics.NewRemediation(reg), probes: probeMetrics,
		backups: metrics.NewBackups(reg, probeMetrics), watchdogs: metrics.NewWatchdogs(reg)}
	var a *App // set at the end; the elector calls a.lead from Run only
	el, err := leader.New(leader.Options{Store: st, Lease: cfg.Storage.Lease, Metrics: metrics.NewLeader(reg),
		Logger:      log.With("component", "leader"),
		Lead:        func(ctx context.Context, l store.Lease) error { return a.lead(ctx, l) },
		SteppedDown: func() { lo.forget() }})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	backups, err := backup.NewScheduler(backup.Options{Config: cfg, Logger: log.With("component", "backup"),
		Metrics: lo.backups, Objectives: objectives, Journal: el.Journal(),
		Integrity: probe.CheckCopy(cfg, log.With("component", "restore-test"))})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	kube := kubeclient.NewCache("drguard")
	notifications := metrics.NewNotifications(reg)
	for _, n := range cfg.Notifiers {
		notifications.Init(n.Name)
	}
	actions, err := BuildActions(action.Deps{Logger: log.With("component", "action"), Config: cfg, Kube: kube, Backups: backups,
		Notifications: notifications})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	env := probe.NewEnv(probe.EnvOptions{Logger: log.With("component", "probe"), Config: cfg, Metrics: probeMetrics, Kube: kube})
	probes, err := env.Compile(cfg.Probes)
	if err != nil {
		env.Close()
		_ = st.Close()
		return nil, err
	}
	var eng *remediate.Engine
	// emit hands a detection of drguard's own (a probe's, a watchdog's)
	// to the outbox, as intake does an alert.
	emit := func(ctx context.Context, d detect.Detection) error {
		if err := st.EnqueueAlerts(ctx, []store.Alert{server.AlertRecord(d, string(d.Source), time.Now().UTC())}); err != nil {
			return err
		}
		eng.Wake()
		return nil
	}
	sched, err := detect.NewScheduler(detect.SchedulerOptions{
		Probes: cfg.Probes, Metrics: probeMetrics, Logger: log.With("component", "scheduler"),
		Run: func(ctx context.Context, p config.Probe) detect.Result {
			r := probes.Run(ctx, p)
			if point, ok := probe.ReplicaRecoveryPoint(p, r); ok {
				objectives.ObserveReplica(p.Target, point) // replica RPO exposure
			}
			return r
		},
		Emit: emit,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	eng, err = remediate.New(remediate.Options{
		Store: st, Config: cfg, Actions: actions, Verifier: sched, Metrics: lo.remediation,
		Logger: log.With("component", "engine"), DryRun: o.DryRun,
		OnResolved: func(in store.Incident) {
			if in.Labels[remediate.LabelDrill] == "" { // drills are measured by their own metrics
				observeIncident(objectives, in)
			}
		},
		OnFenced: el.Fenced,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	notifiers := action.NewNotifiers(cfg, nil).WithMetrics(notifications)
	updates, err := remediate.NewStatusUpdater(remediate.StatusUpdaterOptions{Store: st, Journal: el.Journal(), Config: cfg,
		Notifiers: notifiers, Logger: log.With("component", "status-updates")})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	journal := el.Journal()
	keep := &retention{update: journal.Update, keep: time.Duration(cfg.Storage.Retention), every: compactEvery,
		m: metrics.NewJournal(reg), log: log.With("component", "retention"), now: time.Now}
	watchdogs, err := newWatchdogMonitor(cfg, st, el, emit, lo.watchdogs, log)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	drills, err := drill.New(drill.Options{Store: st, Journal: el.Journal(), Engine: eng, Config: cfg, Prober: sched, Actions: actions, Backups: backups,
		Notifiers: notifiers, Metrics: metrics.NewDrills(reg), Logger: log.With("component", "drills")})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	addr := cfg.Server.ListenAddress
	if o.ListenAddress != "" {
		addr = o.ListenAddress
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	web, err := newWeb(cfg, st, engineAPI{eng}, objectives, reg, log)
	if err != nil {
		_ = ln.Close()
		_ = st.Close()
		return nil, err
	}
	srv := server.New(server.Options{
		Store: st, Engine: engineAPI{eng}, Drills: drillAPI{drills}, Postmortems: postmortemAPI{st}, Auth: web.auth,
		Gatherer: reg, Intake: metrics.NewIntake(reg), Logger: log.With("component", "http"),
		MaxBodyBytes: cfg.Server.MaxBodyBytes, AuthMetrics: metrics.NewAuth(reg), Role: el.Status,
		Console: web.console, Events: web.stream, Slack: web.slackHandler(),
	})
	a = &App{
		cfg: cfg, log: log, store: st, engine: eng, elector: el, watchdogs: watchdogs, leaderOnly: lo, drills: drills,
		sched: sched, updates: updates, backups: backups, probes: env, listener: ln, registry: reg, webConfig: o.WebConfigFile,
		web: web, retention: keep,
		pitr: pitr.New(pitr.Options{Config: cfg, Report: objectives.ObservePITR, Logger: log.With("component", "pitr")}),
		http: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
	}
	// Event streams never go idle: end them when shutdown begins.
	a.http.RegisterOnShutdown(web.stream.Close)
	return a, nil
}

// observeIncident records a resolved incident's recovery duration in
// drguard_recovery_duration_seconds{service,scenario}.
func observeIncident(o *metrics.Objectives, in store.Incident) bool {
	if in.State != store.IncidentResolved {
		return false
	}
	return o.ObserveIncident(metrics.Incident{Service: in.Labels["service"], Scenario: in.Labels["scenario"],
		StartsAt: in.StartsAt, FirstSeen: in.FirstSeen, ResolvedAt: in.ResolvedAt})
}

// BuildActions provisions every registered action once, on the shared
// services in deps (an HTTP client with a bound is added when it has none).
func BuildActions(deps action.Deps) (map[string]action.Action, error) {
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{Timeout: 5 * time.Minute}
	}
	out, err := action.Build(deps)
	if err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	return out, nil
}

// Addr is the address the API listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Run serves until ctx ends, taking part in the election of the leader
// (leader.go): every replica takes webhooks, serves the API and records
// decisions; the leader alone runs the engine, the probes, the watchdogs,
// backups and status updates. Then it shuts down gracefully: the listener
// stops taking requests, in-flight requests finish, the term ends (the
// lease is released), steps in flight are stopped and the journal closes.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("drguard serving", "address", a.Addr(), "version", Version, "holder", a.elector.Holder())
	engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	// The components run in an errgroup: the first to fail cancels the
	// group's context, which starts the shutdown below; Wait returns that
	// first error once every component has returned.
	g, gctx := startAll(engCtx, []component{
		{"election", a.elector.Run},
		{"pitr", a.pitr.Run},
		{"event feed", a.web.feed.Run},
		{"http", a.serveHTTP},
	})
	select {
	case <-ctx.Done():
	case <-gctx.Done():
	}
	a.log.Info("shutting down")
	timeout := time.Duration(a.cfg.Server.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := a.http.Shutdown(sctx); err != nil {
		a.log.Warn("http shutdown", "err", err)
	}
	stopEngine()
	runErr := g.Wait()
	a.engine.Shutdown()
	a.probes.Close()
	if err := a.store.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// Close releases resources of an App that was never Run.
func (a *App) Close() error {
	_ = a.listener.Close()
	a.probes.Close()
	return a.store.Close()
}

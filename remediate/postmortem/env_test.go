package postmortem_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
	"github.com/fruitfulplanet/drguard/remediate/drill"
)

// goldenStart is the time the golden files show for the start of a
// test's clock. The clock itself starts at the wall clock's second (the
// drill runner bounds its context by a deadline from it) and moves only
// where a test advances it; golden rewrites the times it journaled.
var goldenStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is a real journal, engine, probe scheduler (real http probes of
// the service "orders", which answers 503 while the file Down exists),
// status updater and drill runner, with a webhook notifier, on a fixed
// clock.
type env struct {
	t       *testing.T
	clock   *testharness.Clock
	start   time.Time // the clock's start
	dir     string    // the journal's directory
	Down    string    // remove to make the service healthy
	store   *store.Store
	eng     *remediate.Engine
	updater *remediate.StatusUpdater
	runner  *drill.Runner
	team    *testharness.HTTPSink
}

// ordersProbe is the http probe of the service, recovered_when of drills
// and verify of steps.
const ordersProbe = "orders-http"

// newEnv fills in cfg's service, probe, notifier and defaults, and starts
// everything. The probe runs every interval: an hour keeps it from firing
// (it fails twice before it fires), for tests whose alerts come from
// Alertmanager.
// build gets the path of the file that makes the service fail.
func newEnv(t *testing.T, interval time.Duration, build func(down string) *config.Config) *env {
	t.Helper()
	e := &env{t: t, start: time.Now().UTC().Truncate(time.Second), dir: t.TempDir()}
	e.clock = testharness.NewClock(e.start)
	e.Down = filepath.Join(t.TempDir(), "down")
	cfg := build(e.Down)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if _, err := os.Stat(e.Down); err == nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(svc.Close)
	e.team = testharness.NewHTTPSink(t)
	cfg.Server.ExternalURL = "https://drguard.example.com"
	cfg.Objectives = map[string]config.Objective{"orders": {RPO: model.Duration(time.Hour), RTO: model.Duration(4 * time.Hour)}}
	cfg.Targets.HTTP = []config.HTTPTarget{{Name: "orders-web", URL: svc.URL}}
	cfg.Probes = append(cfg.Probes, config.Probe{Name: ordersProbe, Type: "http", Target: "orders-web", Scenario: "db_down", Service: "orders",
		Interval: model.Duration(interval), Timeout: model.Duration(2 * time.Second), FailureThreshold: 2, SuccessThreshold: 1,
		Params: map[string]any{"path": "/healthz"}})
	cfg.Notifiers = []config.Notifier{{Name: "team", Type: config.NotifierWebhook, URL: config.Secret(e.team.URL),
		StatusInterval: model.Duration(time.Minute)}}
	config.ApplyDefaults(cfg)
	e.open(cfg)
	return e
}

// open starts the journal and everything on it.
func (e *env) open(cfg *config.Config) {
	t := e.t
	st, err := store.Open(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	log := testharness.Logger(t)
	actions, err := action.Build(action.Deps{Config: cfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	penv := probe.NewEnv(probe.EnvOptions{Logger: log, Config: cfg})
	t.Cleanup(penv.Close)
	probes, err := penv.Compile(cfg.Probes)
	if err != nil {
		t.Fatal(err)
	}
	var eng *remediate.Engine
	sched, err := detect.NewScheduler(detect.SchedulerOptions{Probes: cfg.Probes, NoJitter: true, Now: e.clock.Now,
		RefreshEvery: 1 << 20, Logger: log,
		Run: func(ctx context.Context, p config.Probe) detect.Result { return probes.Run(ctx, p) },
		Emit: func(ctx context.Context, d detect.Detection) error {
			return e.enqueue(ctx, store.Alert{Source: string(d.Source), Fingerprint: d.Fingerprint, Status: string(d.Status),
				StartsAt: d.StartsAt, EndsAt: d.EndsAt, Labels: d.Labels, Annotations: d.Annotations})
		}})
	if err != nil {
		t.Fatal(err)
	}
	eng, err = remediate.New(remediate.Options{Store: st, Config: cfg, Actions: actions, Verifier: sched,
		Metrics: metrics.NewRemediation(prometheus.NewRegistry()), Logger: log, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.eng = eng
	e.updater, err = remediate.NewStatusUpdater(remediate.StatusUpdaterOptions{Store: st, Config: cfg, Logger: log, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.runner, err = drill.New(drill.Options{Store: st, Engine: eng, Config: cfg, Prober: sched, Actions: actions,
		Metrics: metrics.NewDrills(prometheus.NewRegistry()), Logger: log, Now: e.clock.Now, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	testharness.RunAll(t, eng.Run, sched.Run, e.runner.Run)
	testharness.Eventually(t, 5*time.Second, "the engine and the drill runner to lead", func() bool {
		return eng.Leading() && e.runner.Leading()
	})
}

// enqueue journals an alert the way intake does and wakes the engine.
func (e *env) enqueue(ctx context.Context, a store.Alert) error {
	a.ReceivedAt = e.clock.Now()
	if err := e.store.EnqueueAlerts(ctx, []store.Alert{a}); err != nil {
		return err
	}
	e.eng.Wake()
	return nil
}

// alert sends an Alertmanager alert about the orders database.
func (e *env) alert(status detect.Status, startsAt time.Time) {
	e.t.Helper()
	a := store.Alert{Source: string(detect.SourceAlertmanager), Fingerprint: "6f1c2a9e0b4d7a31", Status: string(status), StartsAt: startsAt,
		Labels:      map[string]string{"alertname": "PostgresDown", "service": "orders", "scenario": "db_down", "severity": "critical", "target": "orders-db"},
		Annotations: map[string]string{"summary": "PostgreSQL orders-db is down", "description": "pg_up has been 0 for 1m on orders-db:5432"}}
	if status == detect.StatusResolved {
		a.EndsAt = e.clock.Now()
	}
	if err := e.enqueue(context.Background(), a); err != nil {
		e.t.Fatal(err)
	}
}

// incident waits until the only incident satisfies cond, and returns it
// with its runs.
func (e *env) incident(what string, cond func(store.Incident, []store.Run) bool) (store.Incident, []store.Run) {
	e.t.Helper()
	var in store.Incident
	var runs []store.Run
	testharness.Eventually(e.t, 20*time.Second, what, func() bool {
		list, err := e.eng.Incidents()
		if err != nil || len(list) == 0 {
			return false
		}
		in, runs, err = e.eng.Incident(list[0].ID)
		return err == nil && cond(in, runs)
	})
	return in, runs
}

// approval returns the pending approval of a step.
func (e *env) approval(step string) store.Approval {
	e.t.Helper()
	var out store.Approval
	testharness.Eventually(e.t, 10*time.Second, "approval of "+step, func() bool {
		list, err := e.eng.PendingApprovals()
		for _, a := range list {
			if a.Step == step {
				out = a
				return err == nil
			}
		}
		return false
	})
	return out
}

// runIn reports whether the runs include one of policy in state.
func runIn(runs []store.Run, policy string, state store.RunState) bool {
	for _, r := range runs {
		if r.Policy == policy && r.State == state {
			return true
		}
	}
	return false
}

func argv(args ...any) map[string]any { return map[string]any{"argv": args} }

func mdur(d time.Duration) model.Duration { return model.Duration(d) }

func ptr[T any](v T) *T { return &v }

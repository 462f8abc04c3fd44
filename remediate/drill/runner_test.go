package drill

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// env is a journal, an engine, a probe scheduler whose one probe, "svc",
// passes while Healthy is set, a webhook notifier that records what it is
// sent, and a drill runner over them, all running until the test ends.
type env struct {
	t       *testing.T
	Healthy atomic.Bool
	store   *store.Store
	eng     *remediate.Engine
	runner  *Runner
	reg     *prometheus.Registry
	m       *metrics.Drills
	team    *testharness.HTTPSink
}

// newEnv builds and starts everything for cfg (defaults applied here).
func newEnv(t *testing.T, cfg *config.Config) *env {
	t.Helper()
	e := &env{t: t}
	e.Healthy.Store(true)
	e.team = testharness.NewHTTPSink(t)
	cfg.Notifiers = []config.Notifier{{Name: "team", Type: config.NotifierWebhook, URL: config.Secret(e.team.URL)}}
	config.ApplyDefaults(cfg)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e.store = st
	actions, err := action.Build(action.Deps{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	var eng *remediate.Engine
	sched, err := detect.NewScheduler(detect.SchedulerOptions{Probes: cfg.Probes, NoJitter: true,
		Run: func(context.Context, config.Probe) detect.Result {
			if e.Healthy.Load() {
				return detect.Result{OK: true, CheckedAt: time.Now()}
			}
			return detect.Result{OK: false, Reason: "service down", CheckedAt: time.Now()}
		},
		Emit: func(ctx context.Context, d detect.Detection) error {
			a := store.Alert{Source: string(d.Source), Fingerprint: d.Fingerprint, Status: string(d.Status), StartsAt: d.StartsAt,
				EndsAt: d.EndsAt, Labels: d.Labels, Annotations: d.Annotations, ReceivedAt: time.Now().UTC()}
			if err := st.EnqueueAlerts(ctx, []store.Alert{a}); err != nil {
				return err
			}
			eng.Wake()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.reg = prometheus.NewRegistry()
	eng, err = remediate.New(remediate.Options{Store: st, Config: cfg, Actions: actions, Verifier: sched, Logger: testharness.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.eng = eng
	e.m = metrics.NewDrills(e.reg)
	e.runner, err = New(Options{Store: st, Engine: eng, Config: cfg, Prober: sched, Actions: actions, Metrics: e.m,
		Logger: testharness.Logger(t), Tick: 20 * time.Millisecond, ScheduleTick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testharness.RunAll(t, eng.Run, sched.Run, e.runner.Run)
	testharness.Eventually(t, 5*time.Second, "the drill runner to lead", e.runner.Leading)
	return e
}

// svcConfig is a service with objectives, a probe "svc" that detects its
// failure, a policy whose exec steps recover it, and the drill d.
func svcConfig(t *testing.T, d config.Drill, steps ...config.Step) *config.Config {
	if len(steps) == 0 {
		steps = []config.Step{{Name: "recover", Action: "exec", Params: map[string]any{"argv": []any{"true"}}}}
	}
	return &config.Config{
		Objectives: map[string]config.Objective{"shop": {RPO: mdur(time.Hour), RTO: mdur(4 * time.Hour)}},
		Probes: []config.Probe{{Name: "svc", Type: "test", Scenario: "outage", Service: "shop", Interval: mdur(50 * time.Millisecond),
			Timeout: mdur(40 * time.Millisecond), FailureThreshold: 2, SuccessThreshold: 1}},
		Policies: []config.Policy{{Name: "recover-shop", Matchers: []string{`scenario="outage"`, `service="shop"`}, Steps: steps}},
		Drills:   []config.Drill{d},
	}
}

// wait waits for the drill run to end and returns it.
func (e *env) wait(id string) store.DrillRun {
	e.t.Helper()
	var run store.DrillRun
	testharness.Eventually(e.t, 20*time.Second, "drill "+id+" to end", func() bool {
		var err error
		run, err = e.runner.Get(id)
		return err == nil && !run.Active()
	})
	return run
}

func mdur(d time.Duration) model.Duration { return model.Duration(d) }

// TestSyntheticDrill: a tabletop drill announces itself, journals the
// detection the policy answers, claims the incident (labelled drill=NAME),
// starts the run as drill:NAME, measures the RTO once recovered_when
// passes, and fails only "monitoring and alerts working", not shown; its
// metrics follow. A second start while it runs is refused.
func TestSyntheticDrill(t *testing.T) {
	d := config.Drill{Name: "tabletop", Policy: "recover-shop", Inject: config.DrillInject{Synthetic: true}, RecoveredWhen: "svc",
		Schedule: &config.DrillSchedule{Every: mdur(90 * 24 * time.Hour)}}
	e := newEnv(t, svcConfig(t, d, config.Step{Name: "recover", Action: "exec", Params: map[string]any{"argv": []any{"sleep", "0.2"}}}))
	run, err := e.runner.Start(context.Background(), "tabletop", "alice", "10.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.runner.Start(context.Background(), "tabletop", "alice", ""); !errors.Is(err, ErrConflict) {
		t.Errorf("second start: %v, want ErrConflict", err)
	}
	if _, err := e.runner.Start(context.Background(), "nope", "alice", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown drill: %v, want ErrNotFound", err)
	}
	got := e.wait(run.ID)
	if got.State != store.DrillFailed || got.RTO == nil || !got.RTO.Within || len(got.Incidents) != 1 || len(got.Incidents[0].Runs) != 1 {
		t.Fatalf("drill = %s (%s), RTO %+v, incidents %+v", got.State, got.Reason, got.RTO, got.Incidents)
	}
	status := map[string]string{}
	for _, c := range got.Checklist {
		status[c.Item] = c.Status
	}
	if status[store.CheckMonitoring] != store.CheckNotShown || status[store.CheckFailoverWithinRTO] != store.CheckPass ||
		status[store.CheckApplication] != store.CheckPass || status[store.CheckCommunication] != store.CheckPass ||
		status[store.CheckDataLossWithinRPO] != store.CheckFail {
		t.Errorf("checklist %v", status)
	}
	var in store.Incident
	var r store.Run
	err = e.store.View(func(tx *store.Tx) error {
		in, err = tx.Incident(got.Incidents[0].ID)
		if err != nil {
			return err
		}
		r, err = tx.Run(got.Incidents[0].Runs[0])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if in.Labels[remediate.LabelDrill] != "tabletop" || r.RequestedBy != "drill:tabletop" || r.State != store.RunSucceeded {
		t.Errorf("incident labels %v, run requested by %q, %s", in.Labels, r.RequestedBy, r.State)
	}
	if got.RTO.Seconds < 0.2 {
		t.Errorf("RTO %.3fs is shorter than the recovery step", got.RTO.Seconds)
	}
	kinds := map[string]bool{}
	for _, p := range got.Phases {
		kinds[p.Kind] = true
	}
	for _, k := range []string{store.PhaseDetection, store.PhaseDecision, store.PhaseStep, store.PhaseVerification} {
		if !kinds[k] {
			t.Errorf("no %s phase in %+v", k, got.Phases)
		}
	}
	testharness.Eventually(t, 5*time.Second, "the synthetic incident to resolve", func() bool {
		_ = e.store.View(func(tx *store.Tx) error { in, err = tx.Incident(in.ID); return err })
		return in.State == store.IncidentResolved
	})
	if v := testutil.ToFloat64(e.m.RTO.WithLabelValues("tabletop")); v != got.RTO.Seconds {
		t.Errorf("drill_rto_seconds = %v, want %v", v, got.RTO.Seconds)
	}
	if v := testutil.ToFloat64(e.m.LastSuccess.WithLabelValues("tabletop", "outage")); v != 0 {
		t.Errorf("drill_last_success_timestamp_seconds = %v after a failed drill", v)
	}
	if v := testutil.ToFloat64(e.m.ChecklistOK.WithLabelValues("tabletop", store.CheckMonitoring)); v != 0 {
		t.Errorf("checklist_ok{monitoring} = %v", v)
	}
	if v := testutil.ToFloat64(e.m.Period.WithLabelValues("tabletop", "outage")); v != 90*24*3600 {
		t.Errorf("drill_period_seconds = %v", v)
	}
	var subjects []string
	for _, r := range e.team.Requests("") {
		var n struct{ Subject string }
		_ = json.Unmarshal([]byte(r.Body), &n)
		subjects = append(subjects, n.Subject)
	}
	text := strings.Join(subjects, "\n")
	if !strings.Contains(text, "DR drill tabletop: starting") || !strings.Contains(text, "DR drill tabletop: failed") ||
		strings.Count(text, "DR drill tabletop is due now") != 1 {
		t.Errorf("notices sent (the due date announced once, whatever the ticks):\n%s", text)
	}
	md := Markdown(got)
	for _, want := range []string{"# DR drill tabletop: failed", "- [ ] – (not shown) Monitoring and alerts working", "- [x] ✓ Failover completed within RTO", "| RTO |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestRecoverAfterRestart: the drill metrics come back from the journal;
// a drill journaled running when drguard stopped ends interrupted at the
// next start (and says so to the team); a drill incident left without a
// run gets its policy's run, requested by the drill.
func TestRecoverAfterRestart(t *testing.T) {
	d := config.Drill{Name: "tabletop", Policy: "recover-shop", Inject: config.DrillInject{Synthetic: true}, RecoveredWhen: "svc"}
	e := newEnv(t, svcConfig(t, d))
	run, err := e.runner.Start(context.Background(), "tabletop", "alice", "")
	must(t, err)
	done := e.wait(run.ID)
	restart := func() (*Runner, *metrics.Drills) {
		m := metrics.NewDrills(prometheus.NewRegistry())
		cfg := svcConfig(t, d)
		cfg.Notifiers = []config.Notifier{{Name: "team", Type: config.NotifierWebhook, URL: config.Secret(e.team.URL)}}
		config.ApplyDefaults(cfg)
		r, err := New(Options{Store: e.store, Engine: e.eng, Config: cfg, Prober: e.runner.o.Prober, Metrics: m, Logger: testharness.Logger(t)})
		must(t, err)
		must(t, r.Recover(context.Background()))
		return r, m
	}
	_, m := restart()
	if v := testutil.ToFloat64(m.RTO.WithLabelValues("tabletop")); v != done.RTO.Seconds {
		t.Errorf("drill_rto_seconds after a restart = %v, want %v (from the journal)", v, done.RTO.Seconds)
	}
	if v := testutil.ToFloat64(m.LastRun.WithLabelValues("tabletop", "outage")); v != unix(done.EndedAt) {
		t.Errorf("drill_last_run_timestamp_seconds after a restart = %v, want %v", v, unix(done.EndedAt))
	}

	var stale store.DrillRun
	err = e.store.Update(func(tx *store.Tx) error {
		stale = store.DrillRun{Drill: "tabletop", State: store.DrillRunning, StartedAt: time.Now().UTC(), StartedBy: "bob"}
		return tx.PutDrillRun(&stale)
	})
	must(t, err)
	claimed := make(chan store.Incident, 1) // claimed, and no run started for it
	release := e.eng.Correlate(&remediate.Correlation{Drill: "tabletop", RunID: stale.ID, Policies: []string{"recover-shop"},
		Notify: func(in store.Incident) { claimed <- in }})
	must(t, e.store.EnqueueAlerts(context.Background(), []store.Alert{{Source: "probe", Fingerprint: "orphan", Status: "firing",
		StartsAt: time.Now().UTC(), Labels: map[string]string{"scenario": "outage", "service": "shop"}, ReceivedAt: time.Now().UTC()}}))
	e.eng.Wake()
	orphan := <-claimed
	release()
	restarted, _ := restart()
	got, err := restarted.Get(stale.ID)
	must(t, err)
	if got.State != store.DrillInterrupted || len(got.Announcements) != 1 || got.Announcements[0].Kind != "end" {
		t.Errorf("the drill running at the restart: %s, announcements %+v", got.State, got.Announcements)
	}
	testharness.Eventually(t, 10*time.Second, "the orphan incident's run", func() bool {
		_, runs, err := e.eng.Incident(orphan.ID)
		return err == nil && len(runs) == 1 && runs[0].RequestedBy == "drill:tabletop"
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

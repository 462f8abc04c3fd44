package remediate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// newClock returns a settable clock for expiry, cooldown and window tests.
func newClock() *testharness.Clock {
	return testharness.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// harness is a real journal in a temp dir and an engine running on it.
type harness struct {
	t        *testing.T
	dir      string // storage
	work     string // where exec steps leave their marks
	cfg      *config.Config
	clock    *testharness.Clock
	verifier detect.Verifier
	dryRun   bool

	store  *store.Store
	eng    *Engine
	reg    *prometheus.Registry
	m      *metrics.Remediation
	cancel context.CancelFunc
	done   chan error
}

// defaultConfig is a configuration with the defaults the loader sets, and
// a step timeout short enough for tests.
func defaultConfig(policies ...config.Policy) *config.Config {
	c := &config.Config{Guardrails: config.Guardrails{StepTimeout: model.Duration(30 * time.Second)}, Policies: policies}
	config.ApplyDefaults(c)
	return c
}

// newHarness prepares a storage and a work directory; open or run start
// the journal and engine.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), work: t.TempDir(), clock: newClock()}
	t.Cleanup(h.close)
	return h
}

// run opens the journal with cfg and starts the engine.
func (h *harness) run(cfg *config.Config) *harness {
	h.t.Helper()
	h.cfg = cfg
	h.open()
	return h.start()
}

// open opens the journal and builds an engine with h.cfg.
func (h *harness) open() {
	h.t.Helper()
	st, err := store.Open(h.dir)
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	h.store = st
	config.ApplyDefaults(h.cfg) // as the loader does, after a test's changes
	h.reg = prometheus.NewRegistry()
	h.m = metrics.NewRemediation(h.reg)
	eng, err := New(Options{
		Store: st, Config: h.cfg, Actions: testActions(h.t), Verifier: h.verifier,
		Metrics: h.m, Logger: testLogger(h.t), DryRun: h.dryRun, Now: h.clock.Now,
	})
	if err != nil {
		h.t.Fatalf("new engine: %v", err)
	}
	eng.tick = 20 * time.Millisecond
	eng.approvalSettle = 0 // the daemon's second is covered end to end (internal/app)
	h.eng = eng
}

// start runs the engine until the test ends or stop is called.
func (h *harness) start() *harness {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.eng.Run(ctx) }()
	return h
}

// stop ends Run and waits for it.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("engine Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("engine did not stop within 10s")
	}
	h.cancel = nil
}

// idle stops Run's loops but leaves the engine leading, as a single
// process is between two ticks: tests then call its steps one by one.
func (h *harness) idle() {
	h.t.Helper()
	h.stop()
	h.eng.term.Store(&term{queue: newRunQueue()})
}

func (h *harness) close() {
	h.stop()
	if h.store != nil {
		_ = h.store.Close()
		h.store = nil
	}
}

// restart simulates a process restart: stop, close, reopen, new engine
// and metrics, start again.
func (h *harness) restart() {
	h.t.Helper()
	h.close()
	h.open()
	h.start()
}

// alert enqueues one alert the way intake does and wakes the engine.
func (h *harness) alert(status detect.Status, fingerprint string, startsAt time.Time, labels map[string]string) {
	h.t.Helper()
	err := h.store.EnqueueAlerts(context.Background(), []store.Alert{{
		Source: string(detect.SourceAlertmanager), Fingerprint: fingerprint, Status: string(status),
		StartsAt: startsAt, Labels: labels, Annotations: map[string]string{"summary": "test alert " + fingerprint},
		ReceivedAt: h.clock.Now(),
	}})
	if err != nil {
		h.t.Fatalf("enqueue: %v", err)
	}
	h.eng.Wake()
}

var t0 = time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC)

// fire sends a firing alert whose fingerprint is its name.
func (h *harness) fire(fp string, labels map[string]string) {
	h.alert(detect.StatusFiring, fp, t0, labels)
}

// eventually polls cond until it holds or 10s pass.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// incident returns the incident of a fingerprint, failing if absent.
func (h *harness) incident(fp string) (store.Incident, []store.Run) {
	h.t.Helper()
	var id string
	err := h.store.View(func(tx *store.Tx) error {
		in, err := tx.IncidentByKey(detect.Key(fp, t0))
		id = in.ID
		return err
	})
	if err != nil {
		h.t.Fatalf("incident %s: %v", fp, err)
	}
	in, runs, err := h.eng.Incident(id)
	if err != nil {
		h.t.Fatalf("incident %s: %v", id, err)
	}
	return in, runs
}

// hasIncident reports whether the alert has been processed.
func (h *harness) hasIncident(fp string) bool {
	err := h.store.View(func(tx *store.Tx) error {
		_, err := tx.IncidentByKey(detect.Key(fp, t0))
		return err
	})
	return err == nil
}

// waitRun waits until the fingerprint's only run reaches state.
func (h *harness) waitRun(fp string, state store.RunState) store.Run {
	h.t.Helper()
	var last store.Run
	h.eventually(fmt.Sprintf("run of %s to be %s", fp, state), func() bool {
		if !h.hasIncident(fp) {
			return false
		}
		_, runs := h.incident(fp)
		if len(runs) == 0 {
			return false
		}
		last = runs[len(runs)-1]
		return last.State == state
	})
	return last
}

// audits returns the audit entries with the given action.
func (h *harness) audits(act string) []store.AuditEntry {
	h.t.Helper()
	var out []store.AuditEntry
	err := h.store.View(func(tx *store.Tx) error {
		return tx.ForEachAudit(func(e store.AuditEntry) error {
			if e.Action == act {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// steps reads remediation_steps_total for one series.
func (h *harness) steps(policy, act, result string) float64 {
	return testutil.ToFloat64(h.m.Steps.WithLabelValues(policy, act, result))
}

// marks counts the files exec steps created in the work dir with mktemp.
func (h *harness) marks(prefix string) int {
	h.t.Helper()
	m, err := filepath.Glob(filepath.Join(h.work, prefix+".*"))
	if err != nil {
		h.t.Fatal(err)
	}
	return len(m)
}

// markStep is an exec step that leaves one new file per execution.
func (h *harness) markStep(prefix string) config.Step {
	return config.Step{Action: "exec", Params: map[string]any{
		"argv": []any{"mktemp", filepath.Join(h.work, prefix+".XXXXXX")},
	}}
}

func testActions(t *testing.T) map[string]action.Action {
	t.Helper()
	out := map[string]action.Action{}
	for name, build := range action.Registry {
		a, err := build.New(action.Deps{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("build action %s: %v", name, err)
		}
		out[name] = a
	}
	return out
}

// testLogger writes to the test log at debug level.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func labelsFor(target string, extra ...string) map[string]string {
	ls := map[string]string{"alertname": "PostgresDown", "service": "orders", "scenario": "db_down", "target": target}
	for i := 0; i+1 < len(extra); i += 2 {
		ls[extra[i]] = extra[i+1]
	}
	return ls
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// wantMetric waits briefly for a metric to reach want: metrics change just
// after the journal commits, so a test that saw the journal may be early.
func (h *harness) wantMetric(name string, get func() float64, want float64) {
	h.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := get()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantSteps checks one series of remediation_steps_total.
func (h *harness) wantSteps(policy, act, result string, want float64) {
	h.t.Helper()
	h.wantMetric("steps_total{"+policy+","+act+","+result+"}", func() float64 { return h.steps(policy, act, result) }, want)
}

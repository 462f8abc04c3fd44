package probe

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
)

// TestMain stops the shared kube-apiserver after the tests.
func TestMain(m *testing.M) { testharness.Main(m) }

// testEnv is an Env over cfg with fresh metrics, closed at the end of t.
func testEnv(t testing.TB, cfg *config.Config) (Env, *metrics.Probes) {
	t.Helper()
	m := metrics.NewProbes(prometheus.NewRegistry())
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := NewEnv(EnvOptions{Logger: logger, Config: cfg, Metrics: m})
	t.Cleanup(env.Close)
	return env, m
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// mkProbe builds a probe with short intervals for tests.
func mkProbe(name, typ, target string, interval time.Duration, params map[string]any) config.Probe {
	return config.Probe{Name: name, Type: typ, Target: target, Scenario: "test-" + typ, Service: "shop",
		Severity: "critical", Interval: model.Duration(interval), Timeout: model.Duration(interval * 4 / 5),
		FailureThreshold: 2, SuccessThreshold: 1, Params: params}
}

// runOnce compiles p and runs it once with a deadline of its timeout.
func runOnce(t testing.TB, env Env, p config.Probe) detect.Result {
	t.Helper()
	set, err := env.Compile([]config.Probe{p})
	if err != nil {
		t.Fatalf("compile %s: %v", p.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.Timeout))
	defer cancel()
	return set.Run(ctx, p)
}

// detections records what a scheduler emits.
type detections struct {
	mu  sync.Mutex
	got []detect.Detection
}

func (d *detections) emit(_ context.Context, det detect.Detection) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, det)
	return nil
}

func (d *detections) all() []detect.Detection {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]detect.Detection(nil), d.got...)
}

// last returns the newest detection for probe, if any.
func (d *detections) last(probe string) (detect.Detection, bool) {
	all := d.all()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Labels[detect.LabelProbe] == probe {
			return all[i], true
		}
	}
	return detect.Detection{}, false
}

// waitStatus waits until the newest detection of probe has status st.
func (d *detections) waitStatus(t testing.TB, probe string, st detect.Status, within time.Duration) detect.Detection {
	t.Helper()
	var got detect.Detection
	testharness.Eventually(t, within, fmt.Sprintf("a %s detection for %s", st, probe), func() bool {
		var ok bool
		got, ok = d.last(probe)
		return ok && got.Status == st
	})
	return got
}

// startScheduler runs probes on env in a scheduler until the test ends.
func startScheduler(t testing.TB, env Env, probes ...config.Probe) (*detect.Scheduler, *detections) {
	t.Helper()
	set, err := env.Compile(probes)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	rec := &detections{}
	s, err := detect.NewScheduler(detect.SchedulerOptions{Probes: probes, Run: set.Run, Emit: rec.emit,
		Logger: env.Logger, Metrics: env.Metrics, NoJitter: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, rec
}

// gauge reads one series of a gauge vector.
func gauge(v *prometheus.GaugeVec, labels ...string) float64 {
	return testutil.ToFloat64(v.WithLabelValues(labels...))
}

// mustOK fails t unless r passed.
func mustOK(t testing.TB, what string, r detect.Result) {
	t.Helper()
	if !r.OK {
		t.Fatalf("%s failed: %s (observations %v, details %v)", what, r.Reason, r.Observations, r.Details)
	}
}

// mustFail fails t unless r failed with a reason containing want.
func mustFail(t testing.TB, what string, r detect.Result, want string) {
	t.Helper()
	if r.OK || !strings.Contains(r.Reason, want) {
		t.Fatalf("%s: ok=%v reason %q, want a failure containing %q", what, r.OK, r.Reason, want)
	}
}

// modelDur converts a duration for config fields.
func modelDur(d time.Duration) model.Duration { return model.Duration(d) }

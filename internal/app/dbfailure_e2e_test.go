package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestDatabaseFailureEndToEnd runs the DR plan's database-failure scenario
// on a real PostgreSQL: the primary crashes, the postgres_ready probe raises
// a detection after failure_threshold attempts, the matching policy's step
// restarts the primary (an exec of pg_ctl stands in for deleting the pod),
// verification waits for the probe to pass, and the incident resolves. The
// step runs exactly once and the timeline shows it with timestamps.
func TestDatabaseFailureEndToEnd(t *testing.T) {
	pg := testharness.Postgres(t, testharness.NoReplica())
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		testharness.Need(t, "runuser (util-linux)", err)
	}
	pgctl := filepath.Join(pg.BinDir, "pg_ctl")
	restartLog := filepath.Join(pg.PrimaryDataDir, "restart.log")
	// The primary the step starts is not the harness's process: stop it
	// ourselves (cleanups run last-in first-out, so before the harness's).
	t.Cleanup(func() {
		_ = exec.Command(runuser, "-u", "postgres", "--", pgctl, "-D", pg.PrimaryDataDir, "-m", "immediate", "stop").Run()
	})
	cfg := fmt.Sprintf(`
targets:
  postgres:
    - {name: pg-primary, service: demo, dsn: %q}
probes:
  - name: pg-ready
    type: postgres_ready
    target: pg-primary
    scenario: database_failure
    severity: critical
    interval: 250ms
    timeout: 250ms
    failure_threshold: 2
    success_threshold: 1
policies:
  - name: database-failure
    matchers: ['probe="pg-ready"', 'scenario="database_failure"']
    steps:
      - name: restart-primary
        action: exec
        timeout: 60s
        params:
          argv: [%q, "-u", "postgres", "--", %q, "-D", %q, "-l", %q, "-w", "-t", "30", "start"]
        verify: {probe: pg-ready, within: 30s}
`, pg.PrimaryDSN("postgres"), runuser, pgctl, pg.PrimaryDataDir, restartLog)
	a := startApp(t, cfg)
	testharness.Eventually(t, 10*time.Second, "the probe to pass", func() bool {
		return metric(t, a.Registry, "drguard_probe_success", "probe", "pg-ready") == 1
	})

	crashed := time.Now()
	pg.StopPrimary("immediate")

	var in store.Incident
	testharness.Eventually(t, 60*time.Second, "an incident from the probe that resolves", func() bool {
		var list struct{ Incidents []store.Incident }
		getJSON(t, a.URL+"/api/v1/incidents", &list)
		if len(list.Incidents) == 0 {
			return false
		}
		in = list.Incidents[0]
		return in.State == store.IncidentResolved
	})
	t.Logf("crash to resolution: %v", time.Since(crashed).Round(10*time.Millisecond))
	if in.Source != "probe" || in.Labels["probe"] != "pg-ready" || in.Labels["scenario"] != "database_failure" || in.Labels["service"] != "demo" {
		t.Errorf("incident labels: source %q, %v", in.Source, in.Labels)
	}
	testharness.Eventually(t, 5*time.Second, "the recovery duration to be observed", func() bool {
		return metric(t, a.Registry, "drguard_recovery_duration_seconds", "service", "demo", "scenario", "database_failure") == 1
	})
	var detail struct {
		Incident store.Incident
		Runs     []store.Run
	}
	getJSON(t, a.URL+"/api/v1/incidents/"+in.ID, &detail)
	if len(detail.Runs) != 1 {
		t.Fatalf("%d runs for one incident, want 1", len(detail.Runs))
	}
	r := detail.Runs[0]
	s := r.Steps[0]
	if r.State != store.RunSucceeded || s.State != store.StepSucceeded || s.Attempts != 1 || s.StartedAt.IsZero() || s.EndedAt.IsZero() || s.StartedAt.Before(crashed) {
		t.Fatalf("run %s %s, step %s attempts %d started %v ended %v: %s %s", r.ID, r.State, s.State, s.Attempts, s.StartedAt, s.EndedAt, s.Error, s.Output)
	}
	var kinds []string
	for _, ev := range detail.Incident.Timeline {
		if ev.Time.IsZero() {
			t.Errorf("timeline event without a time: %+v", ev)
		}
		kinds = append(kinds, ev.Kind)
	}
	t.Logf("timeline: %s", strings.Join(kinds, ", "))
	if len(kinds) < 3 {
		t.Errorf("timeline too thin: %v", kinds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pg.Exec(ctx, pg.PrimaryDSN("postgres"), "SELECT 1"); err != nil {
		t.Fatalf("primary not back after the step: %v", err)
	}
	// The incident stays closed and nothing runs again.
	time.Sleep(time.Second)
	getJSON(t, a.URL+"/api/v1/incidents/"+in.ID, &detail)
	if len(detail.Runs) != 1 {
		t.Fatalf("%d runs after resolution, want 1", len(detail.Runs))
	}
}

// TestExamplesPassCheck loads the example configurations with every
// registered action and probe validator, as `drguard check` does:
// demo.yaml as scripts/demo.sh writes it, its ${DEMO_...} placeholders
// replaced.
func TestExamplesPassCheck(t *testing.T) {
	t.Setenv("DRGUARD_WEBHOOK_TOKEN", "example-webhook-token")
	t.Setenv("DRGUARD_ADMIN_TOKEN", "example-admin-token")
	examples := filepath.Join("..", "..", "deploy", "examples")
	for _, f := range []string{filepath.Join(examples, "local.yaml"), filepath.Join(examples, "drguard.yaml"), renderDemo(t, examples)} {
		var out, errOut strings.Builder
		code := Main(context.Background(), []string{"check", "--config.file=" + f}, IO{Stdout: &out, Stderr: &errOut})
		if code != 0 {
			t.Errorf("check %s exited %d:\n%s%s", f, code, out.String(), errOut.String())
		}
	}
}

// renderDemo writes demo.yaml as scripts/demo.sh does, with a key file, and
// returns its path.
func renderDemo(t *testing.T, examples string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DEMO_PRIMARY_DSN", "postgres://postgres@127.0.0.1:5432/shop?sslmode=disable")
	t.Setenv("DEMO_REPLICA_DSN", "postgres://postgres@127.0.0.1:5433/shop?sslmode=disable")
	t.Setenv("DEMO_WEBHOOK_URL", "http://127.0.0.1:9/notify")
	raw, err := os.ReadFile(filepath.Join(examples, "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("${DEMO_DIR}", dir, "${DEMO_PG_BIN}", "/usr/lib/postgresql/15/bin",
		"${DEMO_S3_URL}", "http://127.0.0.1:9", "${DEMO_REGION_URL}", "http://127.0.0.1:9/region",
		"${DEMO_SCRIPT}", "/usr/local/bin/demo.sh").Replace(string(raw))
	if strings.Contains(strings.NewReplacer("${DEMO_PRIMARY_DSN}", "", "${DEMO_REPLICA_DSN}", "", "${DEMO_WEBHOOK_URL}", "").Replace(cfg), "${DEMO_") {
		t.Fatalf("demo.yaml has a placeholder scripts/demo.sh does not replace")
	}
	if err := os.WriteFile(filepath.Join(dir, "backup.key"), []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "demo.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

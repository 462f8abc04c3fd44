package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// scenario is a drguard guarding real components — a PostgreSQL primary
// with a streaming replica, Redis, an S3 server, and an HTTP application —
// with objectives, probes, a backup (taken once with the CLI before the
// daemon starts) and a restore test configured, so that every kind of
// drguard metric has series.
type scenario struct {
	*drguard
	// AppHealthy switches the application's readiness endpoint between 200
	// and 503.
	AppHealthy atomic.Bool
	// ExecDir receives one file per run of the test policy's exec step.
	ExecDir string
	// Probes are the names of the configured probes.
	Probes []string
}

// scenarioOptions change a scenario.
type scenarioOptions struct {
	// policies returns the `policies:` section of the configuration,
	// given the scenario's ExecDir.
	policies func(execDir string) string
	// probeInterval is every probe's interval (default 1s).
	probeInterval time.Duration
	// backupInterval is the backup's schedule (default 1h). The daemon
	// takes its first backup one interval after the CLI's.
	backupInterval time.Duration
}

// startScenario starts the components and drguard. The app probe passes
// until AppHealthy is set to false.
func startScenario(t *testing.T, o scenarioOptions) *scenario {
	t.Helper()
	if o.probeInterval == 0 {
		o.probeInterval = time.Second
	}
	if o.backupInterval == 0 {
		o.backupInterval = time.Hour
	}
	s := &scenario{ExecDir: t.TempDir()}
	s.AppHealthy.Store(true)
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if s.AppHealthy.Load() {
			fmt.Fprintln(w, "ok")
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(appSrv.Close)

	pg := testharness.Postgres(t)
	redis := testharness.Redis(t)
	s3srv := testharness.S3(t)
	s3srv.CreateBucket("backups")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": s3srv.AccessKey, "AWS_SECRET_ACCESS_KEY": s3srv.SecretKey, "AWS_SESSION_TOKEN": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
	} {
		t.Setenv(k, v)
	}
	keyFile := filepath.Join(t.TempDir(), "backup.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	every := o.probeInterval.String()
	cfg := authConfig + fmt.Sprintf(`
objectives:
  shop:
    rpo: 1h
    rto: 4h
    rto_overhead: 30m
    recovery_sources:
      - {type: replica, target: replica}
targets:
  postgres:
    - {name: primary, service: shop, dsn: %q}
    - {name: replica, service: shop, dsn: %q}
  redis:
    - {name: sessions, service: shop, address: %q}
  http:
    - {name: app, service: shop, url: %q}
  s3:
    - {name: backups, service: shop, bucket: backups, prefix: db/, region: %q, endpoint: %q}
probes:
  - {name: app-readiness, type: http, target: app, scenario: application_down, severity: critical, interval: %[7]s, timeout: 1s, failure_threshold: 2}
  - {name: pg-ready, type: postgres_ready, target: primary, scenario: database_failure, severity: critical, interval: %[7]s, timeout: 1s}
  - {name: pg-heartbeat, type: postgres_heartbeat, target: primary, scenario: database_failure, interval: %[7]s, timeout: 1s}
  - {name: pg-replication, type: postgres_replication, target: replica, scenario: replication_lag, interval: %[7]s, timeout: 1s, params: {side: replica}}
  - {name: redis-persistence, type: redis_persistence, target: sessions, scenario: session_persistence, interval: %[7]s, timeout: 1s}
  - {name: backup-age, type: backup_age, target: backups, scenario: backup_stale, interval: %[7]s, timeout: 1s, params: {max_age: 7h}}
backups:
  - {name: primary, target: primary, destination: backups, interval: %[9]s, key_file: %[8]q}
restore_tests:
  - {name: primary-daily, backup: primary, interval: 24h, scratch_target: primary}
notifiers:
  - {name: status-page, type: webhook, url: %[10]q, status_updates: false}
`, pg.PrimaryDSN("postgres"), pg.ReplicaDSN("postgres"), redis.Addr, appSrv.URL, s3srv.Region, s3srv.Endpoint, every, keyFile, model.Duration(o.backupInterval),
		appSrv.URL+"/status")
	if o.policies != nil {
		cfg += o.policies(s.ExecDir)
	}
	s.Probes = []string{"app-readiness", "pg-ready", "pg-heartbeat", "pg-replication", "redis-persistence", "backup-age"}
	// A backup taken with the CLI first, as an operator would: the daemon
	// finds it in S3 at start, so its restore test is due at once.
	path, dir := writeConfig(t, cfg)
	storage := filepath.Join(dir, "data")
	cli(t, "backup", "--config.file="+path, "--target=primary", "--storage.path="+storage)
	s.drguard = startDrguardFile(t, path, storage)
	return s
}

// waitProbesRan waits until every probe has exported drguard_probe_success.
func (s *scenario) waitProbesRan(t *testing.T) {
	t.Helper()
	testharness.Eventually(t, 30*time.Second, "every probe to run once", func() bool {
		mf := families(t, s.scrape(t))["drguard_probe_success"]
		seen := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "probe" {
					seen[l.GetValue()] = true
				}
			}
		}
		for _, p := range s.Probes {
			if !seen[p] {
				return false
			}
		}
		return true
	})
}

// execRuns counts the runs of the test policy's exec step for a label.
func (s *scenario) execRuns(t *testing.T, prefix string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(s.ExecDir, prefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// runsEnded reports whether the incidents of alertname have at least one
// run and every one of their runs has ended, as GET
// /api/v1/incidents/{id} shows them.
func (s *scenario) runsEnded(t *testing.T, alertname string) bool {
	t.Helper()
	var list struct {
		Incidents []struct {
			ID     string            `json:"id"`
			Labels map[string]string `json:"labels"`
		} `json:"incidents"`
	}
	code, body := s.do(t, http.MethodGet, "/api/v1/incidents", adminToken, nil)
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /api/v1/incidents: %d %s", code, body)
	}
	runs := 0
	for _, in := range list.Incidents {
		if in.Labels["alertname"] != alertname {
			continue
		}
		var detail struct {
			Runs []struct {
				EndedAt time.Time `json:"endedAt"`
			} `json:"runs"`
		}
		code, body := s.do(t, http.MethodGet, "/api/v1/incidents/"+in.ID, adminToken, nil)
		if code != http.StatusOK || json.Unmarshal(body, &detail) != nil {
			t.Fatalf("GET /api/v1/incidents/%s: %d %s", in.ID, code, body)
		}
		for _, r := range detail.Runs {
			if r.EndedAt.IsZero() {
				return false
			}
			runs++
		}
	}
	return runs > 0
}

// recordingPolicy is a policy whose exec step creates a file named after
// prefix and the alert's label in dir for every run.
func recordingPolicy(name, matcher, dir, prefix, label string) string {
	return fmt.Sprintf(`
  - name: %s
    matchers: [%q]
    target_label: %s
    cooldown: 0s
    steps:
      - name: record
        action: exec
        params:
          argv: ["mktemp", "-p", %q, "%s{{ .Labels.%s }}.XXXXXX"]
        timeout: 10s
`, name, matcher, label, dir, prefix, label)
}

// waitBackupAndRestoreTest waits up to within for the daemon's first
// scheduled backup and restore test to finish (drguard_backup_runs_total
// and drguard_restore_test_runs_total appear) and logs their results. It
// does not fail: the metric checks report what is missing.
func (s *scenario) waitBackupAndRestoreTest(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	// results returns "result=count" of the runs so far; zero-valued
	// series (drguard pre-creates them) do not count.
	results := func(mf *dto.MetricFamily) []string {
		var out []string
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && m.GetCounter().GetValue() > 0 {
					out = append(out, fmt.Sprintf("%s=%.0f", l.GetValue(), m.GetCounter().GetValue()))
				}
			}
		}
		return out
	}
	for time.Now().Before(deadline) {
		mfs := families(t, s.scrape(t))
		b, r := results(mfs["drguard_backup_runs_total"]), results(mfs["drguard_restore_test_runs_total"])
		if len(b) > 0 && len(r) > 0 {
			t.Logf("daemon backup results %v, restore test results %v", b, r)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("no daemon backup and restore test within %s", within)
}

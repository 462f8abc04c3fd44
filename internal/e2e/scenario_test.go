package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// scenario is a drguard guarding real components — a PostgreSQL primary
// with a streaming replica, Redis, an S3 server holding a backup, and an
// HTTP application — with objectives, probes, a backup and a restore test
// configured, so that every kind of drguard metric has series.
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
}

// startScenario starts the components and drguard. The app probe passes
// until AppHealthy is set to false.
func startScenario(t *testing.T, o scenarioOptions) *scenario {
	t.Helper()
	if o.probeInterval == 0 {
		o.probeInterval = time.Second
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
	putBackup(t, s3srv, time.Now().Add(-30*time.Minute))
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
  - {name: primary, target: primary, destination: backups, interval: 1h, key_file: %[8]q}
restore_tests:
  - {name: primary-daily, backup: primary, interval: 24h, scratch_target: primary}
`, pg.PrimaryDSN("postgres"), pg.ReplicaDSN("postgres"), redis.Addr, appSrv.URL, s3srv.Region, s3srv.Endpoint, every, keyFile)
	if o.policies != nil {
		cfg += o.policies(s.ExecDir)
	}
	s.Probes = []string{"app-readiness", "pg-ready", "pg-heartbeat", "pg-replication", "redis-persistence", "backup-age"}
	s.drguard = startDrguard(t, cfg)
	return s
}

// putBackup uploads a backup object and its manifest, ended at end, under
// the backups target's prefix.
func putBackup(t *testing.T, srv *testharness.S3Server, end time.Time) {
	t.Helper()
	c := srv.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := end.UTC().Format("20060102T150405Z")
	for key, body := range map[string]string{
		"db/" + id + ".dump.zst.enc":  "ciphertext",
		"db/" + id + ".manifest.json": fmt.Sprintf(`{"end": %q}`, end.UTC().Format(time.RFC3339)),
	} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(key),
			Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
}

// waitProbesRan waits until every probe has exported drguard_probe_success.
func (s *scenario) waitProbesRan(t *testing.T) {
	t.Helper()
	waitFor(t, 30*time.Second, "every probe to run once", func() bool {
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

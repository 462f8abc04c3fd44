package backup

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// integrityProbes are the target's postgres_integrity checks, which restore
// tests run on the restored copy.
const integrityProbes = `probes:
  - name: app-integrity
    type: postgres_integrity
    target: app-db
    scenario: data_corruption
    params:
      checks:
        - {name: users, sql: "SELECT count(*) FROM users", expect: 5000}
        - {name: no-orphan-orders, sql: "SELECT o.id FROM orders o LEFT JOIN users u ON u.id = o.user_id WHERE u.id IS NULL"}
`

// TestRestoreTestMeasuresRPOAndRTO runs a restore test: it passes the
// integrity checks on the restored copy, measures the recovery point from
// the heartbeat inside it, exports its duration, the RPO exposure and the
// RTO estimate, drops the scratch database, and a restarted service
// rebuilds all of it from object storage.
func TestRestoreTestMeasuresRPOAndRTO(t *testing.T) {
	e := newEnv(t, integrityProbes)
	hb := time.Now().Add(-90 * time.Second).UTC().Truncate(time.Microsecond)
	e.seed(e.source, hb)
	m, err := e.svc.Backup(e.ctx(), "app", TriggerCLI)
	if err != nil {
		t.Fatal(err)
	}
	// A newer heartbeat after the dump is not in the backup.
	e.exec(e.source, `UPDATE drguard_heartbeat SET ts = now()`)

	v, err := e.svc.Verify(e.ctx(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || v.BackupID != m.ID || !v.RecoveryPoint.Equal(hb) || v.RecoveryPointSource != "heartbeat" || v.DurationSeconds <= 0 {
		t.Fatalf("verification = %+v", v)
	}
	if v.Checks["app-integrity.check.users"] != "ok" || v.Checks["app-integrity.check.no-orphan-orders"] != "ok" {
		t.Errorf("checks = %v", v.Checks)
	}
	if got := gauge(t, e.metrics.RestoreTestDuration.WithLabelValues("shop", "app-db")); got != v.DurationSeconds {
		t.Errorf("restore_test_duration_seconds = %v, want %v", got, v.DurationSeconds)
	}
	if got := gauge(t, e.metrics.RestoreTestRecoveryPoint.WithLabelValues("shop", "app-db")); math.Abs(got-float64(hb.UnixNano())/1e9) > 1e-3 {
		t.Errorf("restore_test_recovery_point_timestamp_seconds = %v, want %v", got, hb.Unix())
	}
	exposure, ok := e.objectives.Exposure("shop", metrics.SourceBackup)
	if want := time.Since(hb); !ok || exposure < 90*time.Second || exposure > want+time.Second {
		t.Errorf("rpo exposure from backups = %v (known %v), want about %v", exposure, ok, want)
	}
	wantRTO := v.DurationSeconds + (10 * time.Minute).Seconds()
	if got := gauge(t, e.objectives.RTOEstimate.WithLabelValues("shop")); math.Abs(got-wantRTO) > 1e-6 {
		t.Errorf("rto_estimate_seconds = %v, want %v", got, wantRTO)
	}
	if rows, err := e.pg.Query(e.ctx(), e.pg.PrimaryDSN("postgres"), `SELECT datname FROM pg_database WHERE datname LIKE 'drguard_rt_%'`); err != nil || len(rows) != 0 {
		t.Errorf("scratch databases left: %v (%v)", rows, err)
	}
	var tests []store.RestoreTestRun
	_ = e.journal.View(func(tx *store.Tx) error {
		return tx.ForEachRestoreTestRun(func(r store.RestoreTestRun) error { tests = append(tests, r); return nil })
	})
	if len(tests) != 1 || tests[0].Result != store.BackupSucceeded || tests[0].RecoveryPointAge < 90 {
		t.Errorf("journal = %+v", tests)
	}

	// A restart rebuilds freshness, verification and the RTO estimate
	// from object storage, and does not re-run what is not due.
	e.svc = e.newService()
	e.svc.Refresh(e.ctx())
	if got := gauge(t, e.metrics.LastSuccess.WithLabelValues("shop", "app-db")); math.Abs(got-float64(m.End.UnixNano())/1e9) > 1e-3 {
		t.Errorf("after restart backup_last_success_timestamp_seconds = %v, want %v", got, m.End)
	}
	if got := gauge(t, e.objectives.RTOEstimate.WithLabelValues("shop")); math.Abs(got-wantRTO) > 1e-6 {
		t.Errorf("after restart rto_estimate_seconds = %v, want %v", got, wantRTO)
	}
	if after, ok := e.objectives.Exposure("shop", metrics.SourceBackup); !ok || after < exposure {
		t.Errorf("after restart exposure = %v (%v), want at least %v", after, ok, exposure)
	}
	if due := e.svc.backupDue(e.cfg.Backups[0]); !due.Equal(m.End.Add(time.Hour)) {
		t.Errorf("next backup due %v, want %v", due, m.End.Add(time.Hour))
	}
	if due := e.svc.testDue(e.cfg.RestoreTests[0]); due.Sub(v.End.Add(24*time.Hour)).Abs() > time.Millisecond {
		t.Errorf("next restore test due %v, want %v", due, v.End.Add(24*time.Hour))
	}
}

// TestRestoreTestFailsOnIntegrityCheck fails a restore test whose
// restored copy breaks an integrity check; the scratch database is dropped
// and the backup does not count as verified.
func TestRestoreTestFailsOnIntegrityCheck(t *testing.T) {
	e := newEnv(t, strings.Replace(integrityProbes, "expect: 5000", "expect: 4999", 1))
	e.seed(e.source, time.Now())
	if _, err := e.svc.Backup(e.ctx(), "app", TriggerCLI); err != nil {
		t.Fatal(err)
	}
	v, err := e.svc.Verify(e.ctx(), "app")
	if err == nil || v.OK || !strings.Contains(err.Error(), `integrity checks failed on the restored copy: app-integrity: check users failed: got "5000", want "4999"`) {
		t.Fatalf("want the users check to fail, got %v", err)
	}
	if rows, err := e.pg.Query(e.ctx(), e.pg.PrimaryDSN("postgres"), `SELECT datname FROM pg_database WHERE datname LIKE 'drguard_rt_%'`); err != nil || len(rows) != 0 {
		t.Errorf("scratch databases left: %v (%v)", rows, err)
	}
	if _, ok := e.objectives.Exposure("shop", metrics.SourceBackup); ok {
		t.Error("a backup whose restore test failed counts as a recovery point")
	}
	if got := gauge(t, e.metrics.RestoreTestRuns.WithLabelValues("shop", "app-db", "failure")); got != 1 {
		t.Errorf("restore_test_runs_total{result=failure} = %v", got)
	}
}

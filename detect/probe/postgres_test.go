package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// pgConfig returns a configuration with the primary and replica of pg as
// targets "primary" and "replica".
func pgTestConfig(pg *testharness.PG) *config.Config {
	targets := []config.PostgresTarget{{Name: "primary", Service: "shop", DSN: config.Secret(pg.PrimaryDSN("postgres"))}}
	if pg.ReplicaPort != 0 {
		targets = append(targets, config.PostgresTarget{Name: "replica", Service: "shop", DSN: config.Secret(pg.ReplicaDSN("postgres"))})
	}
	return &config.Config{Targets: config.Targets{Postgres: targets}}
}

// pgExec runs sql on dsn or fails t.
func pgExec(t *testing.T, pg *testharness.PG, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pg.Exec(ctx, dsn, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestPostgresReplication covers the lag acceptance criteria on one
// primary and streaming replica: an idle primary with the heartbeat keeps
// lag under 2 × the heartbeat interval; paused replay with writes makes
// byte lag positive and time lag grow on both sides; a stopped WAL
// receiver reads "0 bytes" yet sets wal_receiver_up 0 and fires.
func TestPostgresReplication(t *testing.T) {
	pg := testharness.Postgres(t)
	env, m := testEnv(t, pgTestConfig(pg))
	const hbEvery = 200 * time.Millisecond
	startScheduler(t, env, mkProbe("heartbeat", "postgres_heartbeat", "primary", hbEvery, nil))
	onPrimary := mkProbe("repl-primary", "postgres_replication", "primary", time.Second, map[string]any{"side": "primary"})
	onReplica := mkProbe("repl-replica", "postgres_replication", "replica", time.Second, map[string]any{"side": "replica"})
	testharness.Eventually(t, 10*time.Second, "the heartbeat to reach the replica", func() bool {
		r := runOnce(t, env, onReplica)
		return r.OK && r.Details["lag_seconds_source"] == "heartbeat"
	})

	t.Run("idle primary with heartbeat", func(t *testing.T) {
		for i := 0; i < 8; i++ {
			rr, rp := runOnce(t, env, onReplica), runOnce(t, env, onPrimary)
			mustOK(t, "replica side", rr)
			mustOK(t, "primary side", rp)
			t.Logf("idle: replica lag %.3fs, primary-side lag %.3fs", rr.Observations["lag_seconds"], rp.Observations["lag_seconds"])
			if s := rr.Observations["lag_seconds"]; s >= 2*hbEvery.Seconds() {
				t.Errorf("replica lag %.3fs on an idle primary, want < %s", s, 2*hbEvery)
			}
			if s := rp.Observations["lag_seconds"]; s >= 2*hbEvery.Seconds() {
				t.Errorf("primary-side lag %.3fs on an idle primary, want < %s", s, 2*hbEvery)
			}
			if rp.Observations["streaming_replicas"] != 1 {
				t.Errorf("streaming_replicas = %v, want 1", rp.Observations["streaming_replicas"])
			}
			time.Sleep(130 * time.Millisecond)
		}
		if up := gauge(m.PGWALReceiverUp, "replica"); up != 1 {
			t.Errorf("pg_wal_receiver_up = %v, want 1", up)
		}
	})

	t.Run("roles", func(t *testing.T) {
		mustFail(t, "ready on replica as primary",
			runOnce(t, env, mkProbe("r", "postgres_ready", "replica", time.Second, map[string]any{"role": "primary"})), "is a replica, want a primary")
		mustFail(t, "heartbeat on replica",
			runOnce(t, env, mkProbe("h", "postgres_heartbeat", "replica", time.Second, nil)), "read-only")
		r := runOnce(t, env, mkProbe("r", "postgres_ready", "primary", time.Second, map[string]any{"role": "primary", "write_check": true}))
		mustOK(t, "ready on primary", r)
		if r.Observations["write_ok"] != 1 || r.Details["role"] != "primary" {
			t.Errorf("ready on primary: %v %v", r.Observations, r.Details)
		}
	})

	t.Run("replay paused", func(t *testing.T) {
		pg.PauseReplay()
		write := func() {
			pgExec(t, pg, pg.PrimaryDSN("postgres"), "CREATE TABLE IF NOT EXISTS filler (x int); INSERT INTO filler SELECT generate_series(1, 20000)")
		}
		write()
		r1, p1 := runOnce(t, env, onReplica), runOnce(t, env, onPrimary)
		time.Sleep(700 * time.Millisecond)
		write()
		r2, p2 := runOnce(t, env, onReplica), runOnce(t, env, onPrimary)
		for _, c := range []struct {
			side   string
			r1, r2 detect.Result
			target string
		}{{"replica", r1, r2, "replica"}, {"primary", p1, p2, "primary"}} {
			t.Logf("%s side with replay paused: lag %.0f then %.0f bytes, %.3fs then %.3fs", c.side,
				c.r1.Observations["lag_bytes"], c.r2.Observations["lag_bytes"], c.r1.Observations["lag_seconds"], c.r2.Observations["lag_seconds"])
			if b := c.r2.Observations["lag_bytes"]; b <= 0 {
				t.Errorf("%s side: lag_bytes %v with replay paused, want > 0", c.side, b)
			}
			if s1, s2 := c.r1.Observations["lag_seconds"], c.r2.Observations["lag_seconds"]; s2 <= s1 || s2 < 0.5 {
				t.Errorf("%s side: lag_seconds %.3f then %.3f, want growing", c.side, s1, s2)
			}
			if g := gauge(m.PGLagBytes, c.target); g <= 0 {
				t.Errorf("pg_replication_lag_bytes{target=%s} = %v, want > 0", c.target, g)
			}
			if g := gauge(m.PGLagSeconds, c.target); g < 0.5 {
				t.Errorf("pg_replication_lag_seconds{target=%s} = %v, want >= 0.5", c.target, g)
			}
		}
		strict := onReplica
		strict.Params = map[string]any{"side": "replica", "max_lag_bytes": 1024, "max_lag_seconds": "300ms"}
		mustFail(t, "replica with thresholds", runOnce(t, env, strict), "over max_lag_bytes 1024")
		if r2.Observations["replay_paused"] != 1 {
			t.Errorf("replay_paused = %v", r2.Observations["replay_paused"])
		}
		pg.ResumeReplay()
		testharness.Eventually(t, 10*time.Second, "the replica to catch up", func() bool {
			r := runOnce(t, env, onReplica)
			return r.OK && r.Observations["lag_bytes"] == 0 && r.Observations["lag_seconds"] < 2*hbEvery.Seconds()
		})
	})

	t.Run("WAL receiver stopped", func(t *testing.T) {
		watch := onReplica
		watch.Interval, watch.Timeout = modelDur(200*time.Millisecond), modelDur(150*time.Millisecond)
		_, rec := startScheduler(t, env, watch)
		pg.StopWALReceiver()
		d := rec.waitStatus(t, watch.Name, detect.StatusFiring, 5*time.Second)
		if !strings.Contains(d.Evidence.Reason, "WAL receiver") || d.Evidence.Observations["lag_bytes"] != 0 {
			t.Errorf("detection evidence %q %v, want the WAL receiver named and lag_bytes 0", d.Evidence.Reason, d.Evidence.Observations)
		}
		if up := gauge(m.PGWALReceiverUp, "replica"); up != 0 {
			t.Errorf("pg_wal_receiver_up = %v, want 0", up)
		}
		if b := gauge(m.PGLagBytes, "replica"); b != 0 {
			t.Errorf("pg_replication_lag_bytes = %v, want 0 (the pitfall)", b)
		}
		mustFail(t, "primary side", runOnce(t, env, onPrimary), "streams to 0 replica(s), want at least 1")
		pg.StartWALReceiver()
		rec.waitStatus(t, watch.Name, detect.StatusResolved, 10*time.Second)
	})
}

// TestPostgresReadyCrash stops the primary with -m immediate: a
// postgres_ready detection follows after failure_threshold intervals, and
// restarting it resolves the detection.
func TestPostgresReadyCrash(t *testing.T) {
	pg := testharness.Postgres(t, testharness.NoReplica())
	env, m := testEnv(t, pgTestConfig(pg))
	const every = 200 * time.Millisecond
	p := mkProbe("db-ready", "postgres_ready", "primary", every, map[string]any{"role": "primary", "write_check": true})
	p.FailureThreshold = 3
	s, rec := startScheduler(t, env, p)
	testharness.Eventually(t, 5*time.Second, "a passing attempt", func() bool {
		r, ok := s.LastResult(p.Name)
		return ok && r.OK
	})
	stopped := time.Now()
	pg.StopPrimary("immediate")
	d := rec.waitStatus(t, p.Name, detect.StatusFiring, 5*time.Second)
	if took := time.Since(stopped); took < time.Duration(p.FailureThreshold-1)*every {
		t.Errorf("fired %s after the crash, before %d intervals of failures", took, p.FailureThreshold)
	}
	if !strings.Contains(d.Evidence.Reason, "cannot connect to primary") || strings.Contains(d.Evidence.Reason, "postgres://") {
		t.Errorf("evidence reason %q", d.Evidence.Reason)
	}
	if d.Labels["scenario"] != "test-postgres_ready" || d.Labels["target"] != "primary" || d.StartsAt.Before(stopped) {
		t.Errorf("detection labels %v startsAt %v (stopped %v)", d.Labels, d.StartsAt, stopped)
	}
	if gauge(m.Success, p.Name, "postgres_ready", "shop") != 0 {
		t.Error("probe_success is not 0 while the primary is down")
	}
	pg.StartPrimary()
	res := rec.waitStatus(t, p.Name, detect.StatusResolved, 10*time.Second)
	if res.Key() != d.Key() {
		t.Errorf("resolved key %s, firing key %s", res.Key(), d.Key())
	}
}

// TestPostgresIntegrity breaks an invariant with an orphan row: the
// detection names the failing check. Checks run read-only, under a
// statement timeout, and amcheck verifies an index.
func TestPostgresIntegrity(t *testing.T) {
	pg := testharness.Postgres(t, testharness.NoReplica())
	env, _ := testEnv(t, pgTestConfig(pg))
	pgExec(t, pg, pg.PrimaryDSN("postgres"), `CREATE EXTENSION IF NOT EXISTS amcheck;
		CREATE TABLE customers (id int PRIMARY KEY);
		CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL);
		INSERT INTO customers VALUES (1), (2);
		INSERT INTO orders VALUES (10, 1), (11, 2);`)
	checks := []any{
		map[string]any{"name": "orphan_orders", "sql": "SELECT o.id FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"},
		map[string]any{"name": "customers_exist", "sql": "SELECT count(*) > 0 FROM customers", "expect": true},
		map[string]any{"name": "two_customers", "sql": "SELECT count(*) FROM customers", "expect": 2},
	}
	p := mkProbe("db-verify", "postgres_integrity", "primary", 300*time.Millisecond,
		map[string]any{"checks": checks, "amcheck_indexes": []any{"orders_pkey", "customers_pkey"}})
	r := runOnce(t, env, p)
	mustOK(t, "intact database", r)
	if r.Observations["checks_total"] != 5 || r.Details["amcheck.orders_pkey"] != "ok" {
		t.Errorf("observations %v details %v", r.Observations, r.Details)
	}

	_, rec := startScheduler(t, env, p)
	pgExec(t, pg, pg.PrimaryDSN("postgres"), "INSERT INTO orders VALUES (12, 99)")
	d := rec.waitStatus(t, p.Name, detect.StatusFiring, 5*time.Second)
	if !strings.Contains(d.Evidence.Reason, "check orphan_orders failed: 1 row(s), want none") ||
		strings.Contains(d.Evidence.Reason, "two_customers") {
		t.Errorf("reason %q, want orphan_orders named alone", d.Evidence.Reason)
	}
	pgExec(t, pg, pg.PrimaryDSN("postgres"), "DELETE FROM orders WHERE id = 12")
	rec.waitStatus(t, p.Name, detect.StatusResolved, 5*time.Second)

	for _, tc := range []struct {
		name  string
		check map[string]any
		extra map[string]any
		want  string
	}{
		{"wrong value", map[string]any{"name": "three", "sql": "SELECT count(*) FROM customers", "expect": "3"}, nil, `check three failed: got "2", want "3"`},
		{"read only", map[string]any{"name": "writes", "sql": "DELETE FROM orders RETURNING id"}, nil, "read-only transaction"},
		{"statement timeout", map[string]any{"name": "slow", "sql": "SELECT pg_sleep(2)", "expect": ""},
			map[string]any{"statement_timeout": "100ms"}, "statement timeout"},
		{"missing index", nil, map[string]any{"amcheck_indexes": []any{"no_such_index"}}, "amcheck no_such_index failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := map[string]any{}
			if tc.check != nil {
				params["checks"] = []any{tc.check}
			}
			for k, v := range tc.extra {
				params[k] = v
			}
			mustFail(t, tc.name, runOnce(t, env, mkProbe("x", "postgres_integrity", "primary", time.Second, params)), tc.want)
		})
	}
}

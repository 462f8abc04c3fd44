package probe

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// TestCompileParams is the spec of every probe kind's params: what
// compiles, and which key each problem names (the configuration loader
// turns the key into the file and line, see internal/app's
// TestCheckParamsFileLine). Every kind refuses an unknown key; kinds with
// durations refuse a bad one; http refuses a bad regexp.
func TestCompileParams(t *testing.T) {
	cfg := &config.Config{Targets: config.Targets{
		Postgres:   []config.PostgresTarget{{Name: "db", DSN: "postgres://u:pw@localhost/db"}},
		Redis:      []config.RedisTarget{{Name: "cache", Address: "127.0.0.1:6379"}},
		HTTP:       []config.HTTPTarget{{Name: "web", URL: "http://localhost:8080"}, {Name: "bad-url", URL: "localhost"}},
		S3:         []config.S3Target{{Name: "backups", Bucket: "b"}},
		Kubernetes: []config.KubernetesTarget{{Name: "k8s", Namespace: "shop"}},
	}}
	type m = map[string]any
	cases := []struct {
		typ, target string
		params      m
		key, err    string // both "": valid
	}{
		{"http", "web", nil, "", ""},
		{"http", "web", m{"path": "/x", "body_regexp": "ok", "max_latency": "2s", "expect_status": []any{200, 204}}, "", ""},
		{"http", "db", nil, "", `target "db" is a postgres target, want a http target`},
		{"http", "nope", nil, "", `undefined http target "nope"`},
		{"http", "bad-url", nil, "", "absolute http(s) URL"},
		{"http", "web", m{"pathh": "/x"}, "pathh", `unknown key (did you mean "path"?)`},
		{"http", "web", m{"expect_status": []any{200, 700}}, "expect_status[1]", "700 is not an HTTP status code"},
		{"http", "web", m{"body_regexp": "("}, "body_regexp", "invalid regular expression"},
		{"http", "web", m{"max_latency": "soon"}, "max_latency", `"soon" is not a duration`},
		{"http", "web", m{"max_latency": 1.5}, "", ""},
		{"http", "web", m{"max_latency": true}, "max_latency", "want a duration"},
		{"http", "web", m{"headers": []any{"a"}}, "headers", "want a mapping, got a list"},

		{"postgres_ready", "db", m{"role": "primary", "write_check": true}, "", ""},
		{"postgres_ready", "db", m{"role": "leader"}, "role", "want any, primary or replica"},
		{"postgres_ready", "db", m{"write_chek": true}, "write_chek", `did you mean "write_check"?`},
		{"postgres_ready", "db", m{"heartbeat_table": "x; drop"}, "heartbeat_table", "not a plain identifier"},

		{"postgres_heartbeat", "db", m{"table": "ops.heartbeat", "id": "dc1"}, "", ""},
		{"postgres_heartbeat", "db", m{"table": "x; DROP TABLE y"}, "table", "not a plain identifier"},
		{"postgres_heartbeat", "db", m{"interval": "5s"}, "interval", "unknown key"},

		{"postgres_replication", "db", m{"max_lag_bytes": 1 << 24, "max_lag_seconds": "30s", "min_replicas": 1}, "", ""},
		{"postgres_replication", "db", m{"side": "both"}, "side", "want auto, primary or replica"},
		{"postgres_replication", "db", m{"max_lag_bytes": "lots"}, "max_lag_bytes", `"lots" is not a whole number`},
		{"postgres_replication", "db", m{"max_lag_seconds": "half a minute"}, "max_lag_seconds", "is not a duration"},
		{"postgres_replication", "db", m{"max_lag": "30s"}, "max_lag", "unknown key"},

		{"postgres_integrity", "db", m{"checks": []any{m{"name": "n", "sql": "SELECT 1", "expect": 1}}}, "", ""},
		{"postgres_integrity", "db", m{"checks": []any{m{"sql": "SELECT 1"}}}, "checks[0].name", "is required"},
		{"postgres_integrity", "db", m{"checks": []any{m{"name": "n", "sql": "SELECT 1", "expected": 1}}}, "checks[0].expected", "unknown key"},
		{"postgres_integrity", "db", m{"amcheck_indexes": []any{"i"}, "statement_timeout": "forever"}, "statement_timeout", "is not a duration"},
		{"postgres_integrity", "db", nil, "", "want at least one of checks or amcheck_indexes"},

		{"redis_persistence", "cache", m{"max_age": "1h", "require_aof": true}, "", ""},
		{"redis_persistence", "cache", m{"max_age": "an hour"}, "max_age", "is not a duration"},
		{"redis_persistence", "cache", m{"max_agee": "1h"}, "max_agee", `did you mean "max_age"?`},
		{"redis_persistence", "web", nil, "", "want a redis target"},

		{"backup_age", "backups", m{"max_age": "26h", "require_versioning": true}, "", ""},
		{"backup_age", "backups", nil, "max_age", "is required"},
		{"backup_age", "backups", m{"max_age": "yesterday"}, "max_age", "is not a duration"},
		{"backup_age", "backups", m{"max_age": "26h", "bucket": "x"}, "bucket", "unknown key"},

		{"kubernetes_workload", "k8s", m{"kind": "statefulset", "name": "pg"}, "", ""},
		{"kubernetes_workload", "k8s", m{"kind": "DaemonSet", "name": "x"}, "kind", "want Deployment or StatefulSet"},
		{"kubernetes_workload", "k8s", m{}, "name", "is required"},
		{"kubernetes_workload", "k8s", m{"name": "x", "min_ready": "all"}, "min_ready", "not a whole number"},
		{"kubernetes_workload", "k8s", m{"name": "x", "context": "dr"}, "context", "unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.typ+"/"+tc.key+"/"+tc.err, func(t *testing.T) {
			err := ValidateProbe(mkProbe("p", tc.typ, tc.target, time.Second, tc.params), cfg)
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Fatalf("error leaks the DSN: %v", err)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			for _, ke := range params.KeyErrors(err) {
				if ke.Key == tc.key && strings.Contains(ke.Error(), tc.err) {
					return
				}
			}
			t.Fatalf("error %v, want one at key %q containing %q", err, tc.key, tc.err)
		})
	}
	if err := ValidateProbe(mkProbe("p", "ping", "web", time.Second, nil), cfg); err == nil || !strings.Contains(err.Error(), `unknown type "ping"`) {
		t.Errorf("unknown type: %v", err)
	}
}

// TestRegistry checks that every kind is complete and Names lists them.
func TestRegistry(t *testing.T) {
	want := []string{"backup_age", "http", "kubernetes_workload", "postgres_heartbeat", "postgres_integrity",
		"postgres_ready", "postgres_replication", "redis_persistence"}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for name, c := range Registry {
		if c == nil {
			t.Errorf("kind %q has no compiler", name)
		}
	}
	if len(Known()) != len(want) || len(Validators()) != len(want) {
		t.Errorf("Known() has %d kinds, Validators() %d", len(Known()), len(Validators()))
	}
}

// TestRedactor checks that DSNs and passwords never reach a reason.
func TestRedactor(t *testing.T) {
	dsn := "postgres://app:s3cret-pw@db:5432/shop"
	red := newRedactor(dsn, "s3cret-pw")
	if got := red.msg(errString("dial " + dsn + " with s3cret-pw")); strings.Contains(got, "s3cret") {
		t.Errorf("redacted message still has the secret: %s", got)
	}
	_, _, err := pgConfig(config.PostgresTarget{Name: "bad", DSN: "postgres://app:s3cret-pw@db:notaport/shop"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("pgConfig(bad) error %v leaks or is nil", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestReplicaRecoveryPoint: a replica's recovery point is its newest
// replicated heartbeat, else the check's time minus the lag; other probes
// and results without either show none.
func TestReplicaRecoveryPoint(t *testing.T) {
	checked := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	hb := checked.Add(-10 * time.Second)
	repl := config.Probe{Type: "postgres_replication", Target: "replica"}
	cases := []struct {
		name string
		p    config.Probe
		obs  map[string]float64
		want time.Time
		ok   bool
	}{
		{"lag", repl, map[string]float64{"lag_seconds": 42}, checked.Add(-42 * time.Second), true},
		{"heartbeat wins", repl, map[string]float64{"lag_seconds": 99, "heartbeat_timestamp_seconds": float64(hb.Unix())}, hb, true},
		{"nothing measured", repl, nil, time.Time{}, false},
		{"other probe", config.Probe{Type: "postgres_ready"}, map[string]float64{"lag_seconds": 1}, time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := ReplicaRecoveryPoint(tc.p, detect.Result{CheckedAt: checked, Observations: tc.obs})
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

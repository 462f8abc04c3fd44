package probe

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// TestValidate checks target kinds and params of every probe kind.
func TestValidate(t *testing.T) {
	cfg := &config.Config{Targets: config.Targets{
		Postgres:   []config.PostgresTarget{{Name: "db", DSN: "postgres://u:pw@localhost/db"}},
		Redis:      []config.RedisTarget{{Name: "cache", Address: "127.0.0.1:6379"}},
		HTTP:       []config.HTTPTarget{{Name: "web", URL: "http://localhost:8080"}, {Name: "bad-url", URL: "localhost"}},
		S3:         []config.S3Target{{Name: "backups", Bucket: "b"}},
		Kubernetes: []config.KubernetesTarget{{Name: "k8s", Namespace: "shop"}},
	}}
	cases := []struct {
		typ, target string
		params      map[string]any
		err         string // "" means valid
	}{
		{"http", "web", nil, ""},
		{"http", "db", nil, `target "db" is a postgres target, want a http target`},
		{"http", "nope", nil, `undefined http target "nope"`},
		{"http", "bad-url", nil, "absolute http(s) URL"},
		{"http", "web", map[string]any{"expect_status": []any{200, 700}}, "700 is not an HTTP status code"},
		{"http", "web", map[string]any{"body_regexp": "("}, "body_regexp"},
		{"http", "web", map[string]any{"pathh": "/x"}, `unknown key "pathh"`},
		{"http", "web", map[string]any{"max_latency": "soon"}, "not a duration"},
		{"http", "web", map[string]any{"max_latency": 1.5}, ""},
		{"postgres_ready", "db", map[string]any{"role": "primary", "write_check": true}, ""},
		{"postgres_ready", "db", map[string]any{"role": "leader"}, "want any, primary or replica"},
		{"postgres_heartbeat", "db", map[string]any{"table": "ops.heartbeat", "id": "dc1"}, ""},
		{"postgres_heartbeat", "db", map[string]any{"table": "x; DROP TABLE y"}, "not a plain identifier"},
		{"postgres_replication", "db", map[string]any{"max_lag_bytes": 1 << 24, "max_lag_seconds": "30s", "min_replicas": 1}, ""},
		{"postgres_replication", "db", map[string]any{"side": "both"}, "want auto, primary or replica"},
		{"postgres_replication", "db", map[string]any{"max_lag_bytes": "lots"}, "max_lag_bytes: want a number"},
		{"postgres_integrity", "db", map[string]any{"checks": []any{map[string]any{"name": "n", "sql": "SELECT 1", "expect": 1}}}, ""},
		{"postgres_integrity", "db", map[string]any{"checks": []any{map[string]any{"sql": "SELECT 1"}}}, "name is required"},
		{"postgres_integrity", "db", nil, "want at least one of checks or amcheck_indexes"},
		{"redis_persistence", "cache", map[string]any{"max_age": "1h", "require_aof": true}, ""},
		{"redis_persistence", "web", nil, "want a redis target"},
		{"backup_age", "backups", map[string]any{"max_age": "26h", "require_versioning": true}, ""},
		{"backup_age", "backups", nil, "max_age is required"},
		{"kubernetes_workload", "k8s", map[string]any{"kind": "statefulset", "name": "pg"}, ""},
		{"kubernetes_workload", "k8s", map[string]any{"kind": "DaemonSet", "name": "x"}, "want Deployment or StatefulSet"},
		{"kubernetes_workload", "k8s", map[string]any{}, "name is required"},
		{"ping", "web", nil, `unknown type "ping"`},
	}
	for _, tc := range cases {
		t.Run(tc.typ+"/"+tc.err, func(t *testing.T) {
			err := ValidateProbe(mkProbe("p", tc.typ, tc.target, time.Second, tc.params), cfg)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case err != nil && strings.Contains(err.Error(), "pw@"):
				t.Fatalf("error leaks the DSN: %v", err)
			}
		})
	}
}

// TestRegistry checks that every kind is complete and Names lists them.
func TestRegistry(t *testing.T) {
	want := []string{"backup_age", "http", "kubernetes_workload", "postgres_heartbeat", "postgres_integrity",
		"postgres_ready", "postgres_replication", "redis_persistence"}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for name, k := range Registry {
		if k.Run == nil || k.Validate == nil {
			t.Errorf("kind %q lacks Run or Validate", name)
		}
	}
	if len(Known()) != len(want) || len(Validators()) != len(want) {
		t.Errorf("Known() has %d kinds, Validators() %d", len(Known()), len(Validators()))
	}
}

// TestRedactor checks that DSNs and passwords never reach a reason.
func TestRedactor(t *testing.T) {
	dsn := "postgres://app:s3cret-pw@db:5432/shop"
	env, _ := testEnv(t, &config.Config{Targets: config.Targets{Postgres: []config.PostgresTarget{
		{Name: "db", DSN: config.Secret(dsn)}, {Name: "bad", DSN: "postgres://app:s3cret-pw@db:notaport/shop"}}}})
	red := newRedactor(dsn, "s3cret-pw")
	if got := red.msg(errString("dial " + dsn + " with s3cret-pw")); strings.Contains(got, "s3cret") {
		t.Errorf("redacted message still has the secret: %s", got)
	}
	_, _, err := env.pgConfig("bad")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("pgConfig(bad) error %v leaks or is nil", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

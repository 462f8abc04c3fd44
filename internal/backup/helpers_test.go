package backup

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
)

// env is a PostgreSQL server, an S3 server with a bucket, a key file and a
// Service configured for them.
type env struct {
	t       *testing.T
	pg      *testharness.PG
	s3      *testharness.S3Server
	cfg     *config.Config
	svc     *Service
	metrics *metrics.Backups
	// objectives receives the service's restore tests.
	objectives *metrics.Objectives
	reg        *prometheus.Registry
	journal    *store.Store
	keyFile    string
	source     string // the backed-up database's DSN
}

// testBucket is the bucket every test uses.
const testBucket = "backups"

// newEnv starts PostgreSQL and S3, creates database "app" and a
// configuration whose backup "app" dumps it. extraYAML is appended to the
// configuration (probes, for instance).
func newEnv(t *testing.T, extraYAML string) *env {
	t.Helper()
	e := &env{t: t}
	e.pg = testharness.Postgres(t, testharness.NoReplica())
	e.s3 = testharness.S3(t)
	e.s3.CreateBucket(testBucket)
	e.pg.CreateDB("app")
	e.source = e.pg.PrimaryDSN("app")
	dir := t.TempDir()
	e.keyFile = filepath.Join(dir, "backup.key")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(e.keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DRGUARD_TEST_SOURCE_DSN", e.source)
	t.Setenv("DRGUARD_TEST_SCRATCH_DSN", e.pg.PrimaryDSN("postgres"))
	yml := fmt.Sprintf(`auth: {webhook: {bearer_token: test-webhook-token}}
objectives:
  shop: {rpo: 1h, rto: 4h, rto_overhead: 10m}
targets:
  postgres:
    - {name: app-db, service: shop, dsn: "${DRGUARD_TEST_SOURCE_DSN}"}
    - {name: scratch, dsn: "${DRGUARD_TEST_SCRATCH_DSN}"}
  s3:
    - {name: store, bucket: %s, prefix: pg/, endpoint: %q}
backups:
  - {name: app, target: app-db, destination: store, interval: 1h, key_file: %q, part_size_mb: 5, concurrency: 2, sse: AES256}
restore_tests:
  - {name: app-daily, backup: app, interval: 24h, scratch_target: scratch, jobs: 2, timeout: 5m}
%s`, testBucket, e.s3.Endpoint, e.keyFile, extraYAML)
	cfg, err := config.Parse([]byte(yml), filepath.Join(dir, "drguard.yaml"), config.Known{})
	if err != nil {
		t.Fatalf("test configuration:\n%v", err)
	}
	e.cfg = cfg
	e.journal, err = store.Open(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.journal.Close() })
	e.svc = e.newService()
	return e
}

// newService returns a Service on the env's configuration with fresh
// metrics, as after a restart.
func (e *env) newService() *Service {
	e.reg = prometheus.NewRegistry()
	e.metrics = metrics.NewBackups(e.reg, metrics.NewProbes(e.reg))
	e.objectives = metrics.NewObjectives(e.reg, e.cfg.Objectives)
	svc, err := New(Options{
		Config: e.cfg, Metrics: e.metrics, Objectives: e.objectives, Journal: e.journal, TempDir: e.t.TempDir(),
		Integrity: probe.CheckCopy(e.cfg, nil),
		S3Client: func(context.Context, config.S3Target) (*s3.Client, error) {
			return e.s3.NewClient(e.t, func(o *s3.Options) { o.RetryMaxAttempts = 2 }), nil
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// ctx returns a context that ends with the test or after two minutes.
func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e.t.Cleanup(cancel)
	return ctx
}

// exec runs SQL on dsn or fails the test.
func (e *env) exec(dsn, sql string, args ...any) {
	e.t.Helper()
	if err := e.pg.Exec(e.ctx(), dsn, sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// seed fills database dsn with known content of several types, and a
// heartbeat row at hb.
func (e *env) seed(dsn string, hb time.Time) {
	e.exec(dsn, `CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, created timestamptz NOT NULL, score numeric(10,2))`)
	e.exec(dsn, `INSERT INTO users SELECT i, 'user ' || i, '2025-01-01'::timestamptz + i * interval '1 minute', i / 7.0 FROM generate_series(1, 5000) i`)
	e.exec(dsn, `CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), items jsonb, note text)`)
	e.exec(dsn, `INSERT INTO orders (user_id, items, note) SELECT 1 + i % 5000, jsonb_build_object('sku', i, 'qty', i % 3), repeat(md5(i::text), 4) FROM generate_series(1, 20000) i`)
	e.exec(dsn, `CREATE INDEX orders_user ON orders (user_id)`)
	e.exec(dsn, `CREATE TABLE drguard_heartbeat (id text PRIMARY KEY, ts timestamptz NOT NULL)`)
	e.exec(dsn, `INSERT INTO drguard_heartbeat VALUES ('drguard', $1)`, hb)
}

// fingerprint returns, per table of the public schema, its row count and
// the md5 of all its rows in order.
func (e *env) fingerprint(dsn string) map[string]string {
	e.t.Helper()
	rows, err := e.pg.Query(e.ctx(), dsn, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		name := r[0].(string)
		var n int64
		var sum *string
		q := fmt.Sprintf(`SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM %q t`, name)
		if err := e.pg.QueryRow(e.ctx(), dsn, q, &n, &sum); err != nil {
			e.t.Fatal(err)
		}
		out[name] = fmt.Sprintf("%d rows, md5 %v", n, deref(sum))
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// tables lists the tables of the public schema of dsn.
func (e *env) tables(dsn string) []string {
	rows, err := e.pg.Query(e.ctx(), dsn, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r[0].(string))
	}
	return out
}

// objectKeys lists the keys in the bucket.
func (e *env) objectKeys() []string {
	out, err := e.s3.NewClient(e.t).ListObjectsV2(e.ctx(), &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
	if err != nil {
		e.t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// getObject returns an object's bytes.
func (e *env) getObject(key string) []byte {
	out, err := e.s3.NewClient(e.t).GetObject(e.ctx(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<20)
	for {
		n, err := out.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String())
}

// putObject replaces an object's bytes.
func (e *env) putObject(key string, data []byte) {
	_, err := e.s3.NewClient(e.t).PutObject(e.ctx(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		Body: strings.NewReader(string(data)), ContentLength: aws.Int64(int64(len(data)))})
	if err != nil {
		e.t.Fatal(err)
	}
}

// gauge reads one series of a gauge or counter vector.
func gauge(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fruitfulplanet/drguard/internal/app"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// Users of the drill tests: alice starts drills, bob and carol approve.
const (
	drillAdminToken = "drill-admin-token-0001"
	bobToken        = "drill-bob-token-00001"
	carolToken      = "drill-carol-token-0001"
)

// beat is the probes' interval in the drill tests, the heartbeat's too.
const beat = 250 * time.Millisecond

// drillEnv is what a drill acts on, all real but AWS: a PostgreSQL
// primary (with a streaming replica when asked) holding the shop database
// (users, orders and the heartbeat), an S3 server with one backup of it,
// the AWS protocol fake, a namespace of the shared kube-apiserver with the
// plan's objects, a readiness endpoint for the application, and a webhook
// receiver standing for the team's channel and the status page.
type drillEnv struct {
	pg         *testharness.PG
	s3         *testharness.S3Server
	aws        *testharness.AWS
	kube       *testharness.Kube
	ns         string
	kubeconfig string
	keyFile    string
	appURL     string
	// downURL answers nothing: a dependency that never recovers.
	downURL string
	psql    string
	runuser string
	hook    *testharness.HTTPSink
	dir     string
	// cfgPath is where drguardWith writes the configuration.
	cfgPath string
}

// subjects returns the subjects of the notices a webhook notifier sent to
// sink.
func subjects(sink *testharness.HTTPSink) []string {
	var out []string
	for _, r := range sink.Requests("") {
		var n struct{ Subject string }
		_ = json.Unmarshal([]byte(r.Body), &n)
		out = append(out, n.Subject)
	}
	return out
}

// newDrillEnv starts the components. The shop database has two users and
// three valid orders, and the heartbeat row the backup records.
func newDrillEnv(t *testing.T, replica bool) *drillEnv {
	t.Helper()
	var opts []testharness.PGOption
	if !replica {
		opts = append(opts, testharness.NoReplica())
	}
	e := &drillEnv{pg: testharness.Postgres(t, opts...), dir: t.TempDir()}
	e.cfgPath = filepath.Join(e.dir, "drguard.yaml")
	e.pg.CreateDB("shop")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, sql := range []string{
		"CREATE TABLE users (id int PRIMARY KEY)",
		"CREATE TABLE orders (id serial PRIMARY KEY, user_id int NOT NULL)",
		"INSERT INTO users VALUES (1), (2)",
		"INSERT INTO orders (user_id) VALUES (1), (1), (2)",
		"CREATE TABLE drguard_heartbeat (id text PRIMARY KEY, ts timestamptz NOT NULL)",
		"INSERT INTO drguard_heartbeat VALUES ('drguard', now())",
	} {
		if err := e.pg.Exec(ctx, e.pg.PrimaryDSN("shop"), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if replica {
		e.pg.WaitReplicaCaughtUp()
	}
	e.psql = filepath.Join(e.pg.BinDir, "psql")
	var err error
	if e.runuser, err = exec.LookPath("runuser"); err != nil {
		testharness.Need(t, "runuser (util-linux)", err)
	}
	e.aws = testharness.AWSFake(t)
	e.aws.AddInstance("shop-replica-eu", testharness.AWSInstance{Statuses: []string{"available"}, Source: "shop-prod"})
	e.aws.AddInstance("shop-prod", testharness.AWSInstance{Statuses: []string{"available"}, LatestRestorable: time.Now().Add(time.Hour)})
	e.aws.AddHostedZone("Z123", "shop.example.")
	e.s3 = testharness.S3(t)
	e.s3.CreateBucket("backups")
	// S3 checks these; the AWS fake does not look at credentials.
	t.Setenv("AWS_ACCESS_KEY_ID", e.s3.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.s3.SecretKey)
	e.keyFile = filepath.Join(e.dir, "backup.key")
	must(t, os.WriteFile(e.keyFile, []byte(strings.Repeat("5a", 32)+"\n"), 0o600))
	e.kube = testharness.KubeAPIServer(t)
	e.ns = e.kube.NewNamespace(t)
	e.kube.SeedPlan(t, e.ns)
	e.kubeconfig = testharness.WriteKubeconfig(t, "drguard", map[string]testharness.KubeContext{"drguard": {Kube: e.kube, Token: e.kube.AdminToken}})
	// The application is ready while its deployment wants replicas:
	// scaled to 0 (writes stopped, isolated), it serves nothing.
	admin := e.kube.AdminClient(t)
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc, err := admin.AppsV1().Deployments(e.ns).GetScale(r.Context(), "fruitfulplanet-app", metav1.GetOptions{})
		if err != nil || sc.Spec.Replicas == 0 {
			http.Error(w, "no replica serves", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(appSrv.Close)
	e.appURL = appSrv.URL
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	e.downURL = "http://" + closed.Addr().String() + "/health"
	closed.Close()
	e.hook = testharness.NewHTTPSink(t)
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sql returns argv for psql running one statement on database db of the
// server on port.
func (e *drillEnv) sql(port int, db, statement string) string {
	return fmt.Sprintf("[%q, -h, 127.0.0.1, -p, '%d', -U, postgres, -d, %s, -v, ON_ERROR_STOP=1, -c, %q]", e.psql, port, db, statement)
}

// stopPrimary returns argv that stops the primary as the postgres user.
func (e *drillEnv) stopPrimary(mode string) string {
	return fmt.Sprintf("[%q, -u, postgres, --, %q, -D, %q, -m, %s, -w, stop]", e.runuser, filepath.Join(e.pg.BinDir, "pg_ctl"), e.pg.PrimaryDataDir, mode)
}

// config is the configuration every drill test shares, then the test's
// own probes, policies and drills. fourEyes turns four-eyes on.
func (e *drillEnv) config(fourEyes bool, rpo string, extra string) string {
	replica, sources := "", ""
	if e.pg.ReplicaPort != 0 {
		replica = fmt.Sprintf("    - {name: replica, service: shop, dsn: %q}\n", e.pg.ReplicaDSN("shop"))
		sources = ", recovery_sources: [{type: replica, target: replica}]"
	}
	return fmt.Sprintf(`
auth:
  webhook:
    bearer_token: %s
  four_eyes: %t
  users:
    - {name: alice, role: admin, token: %s}
    - {name: bob, role: approver, token: %s}
    - {name: carol, role: approver, token: %s}
guardrails: {destructive_budget: 10}
objectives:
  shop: {rpo: %s, rto: 4h, rto_overhead: 5m%s}
targets:
  postgres:
    - {name: primary, service: shop, dsn: %q}
%s  http:
    - {name: app, service: shop, url: %q}
    - {name: down, service: shop, url: %q}
  s3:
    - {name: backups, service: shop, bucket: backups, prefix: db/, region: %q, endpoint: %q}
  kubernetes:
    - {name: k8s, service: shop, kubeconfig: %q, namespace: %s}
  aws:
    - {name: aws-dr, service: shop, region: eu-west-1, endpoint: %q, max_attempts: 3, max_backoff: 20ms}
backups:
  - {name: primary, target: primary, destination: backups, interval: 1h, key_file: %q}
restore_tests:
  - {name: primary-daily, backup: primary, interval: 24h, scratch_target: primary}
notifiers:
  - {name: status-page, type: webhook, url: %q}
%s`, webhookToken, fourEyes, drillAdminToken, bobToken, carolToken, rpo, sources, e.pg.PrimaryDSN("shop"), replica, e.appURL, e.downURL,
		e.s3.Region, e.s3.Endpoint, e.kubeconfig, e.ns, e.aws.URL, e.keyFile, e.hook.URL, extra)
}

// commonProbes are the probes every drill test has: the application's
// readiness, the primary's readiness and its heartbeat.
func commonProbes(scenario string) string {
	return fmt.Sprintf(`probes:
  - {name: app-ready, type: http, target: app, scenario: application_down, interval: %[1]s, timeout: %[1]s}
  - {name: pg-ready, type: postgres_ready, target: primary, scenario: %[2]s, severity: critical, interval: %[1]s, timeout: %[1]s, failure_threshold: 2}
  - {name: pg-heartbeat, type: postgres_heartbeat, target: primary, interval: %[1]s, timeout: %[1]s, failure_threshold: 1000}
`, beat, scenario)
}

// drguardWith writes cfg to e.cfgPath, takes a backup with the CLI (as an
// operator would), starts drguard listening on listen ("" for any port),
// waits for the daemon's first restore test to pass (the checklist's
// "backup restoration" evidence) and returns drguard.
func (e *drillEnv) drguardWith(t *testing.T, cfg, listen string) *drguard {
	t.Helper()
	must(t, os.WriteFile(e.cfgPath, []byte(cfg), 0o600))
	cli(t, "backup", "--config.file="+e.cfgPath, "--target=primary")
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	d := startDrguardAt(t, e.cfgPath, filepath.Join(e.dir, "data"), listen)
	testharness.Eventually(t, time.Minute, "the first restore test to pass", func() bool {
		mf := families(t, d.scrape(t))["drguard_restore_test_last_success_timestamp_seconds"]
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() > 0 {
				return true
			}
		}
		return false
	})
	return d
}

// wantReplicas fails unless the deployment wants n replicas.
func wantReplicas(t *testing.T, e *drillEnv, name string, n int32) {
	t.Helper()
	sc, err := e.kube.AdminClient(t).AppsV1().Deployments(e.ns).GetScale(context.Background(), name, metav1.GetOptions{})
	must(t, err)
	if sc.Spec.Replicas != n {
		t.Errorf("deployment %s has %d replicas, want %d", name, sc.Spec.Replicas, n)
	}
}

// execute runs `drguard drill --execute` against d as alice and returns
// its exit code, its output and the drill run as journaled.
func execute(t *testing.T, d *drguard, name string) (int, string, store.DrillRun) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	must(t, os.WriteFile(tokenFile, []byte(drillAdminToken+"\n"), 0o600))
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := app.Main(ctx, []string{"drill", "--drill=" + name, "--execute", "--server=" + d.URL, "--token-file=" + tokenFile, "--poll=100ms"},
		app.IO{Stdout: &out, Stderr: &errOut})
	var list struct {
		Drills []struct {
			Drill string `json:"drill"`
			Last  *struct {
				ID string `json:"id"`
			} `json:"last"`
		} `json:"drills"`
	}
	d.getJSON(t, "/api/v1/drills", &list)
	var run store.DrillRun
	for _, x := range list.Drills {
		if x.Drill == name && x.Last != nil {
			d.getJSON(t, "/api/v1/drills/runs/"+x.Last.ID, &run)
		}
	}
	if run.ID == "" {
		t.Fatalf("drill %s left no run: exit %d\n%s%s", name, code, out.String(), errOut.String())
	}
	t.Logf("drguard drill --execute --drill=%s exited %d:\n%s%s", name, code, out.String(), errOut.String())
	return code, out.String(), run
}

// getJSON GETs path as the drill tests' admin and decodes the answer.
func (d *drguard) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, body := d.do(t, http.MethodGet, path, drillAdminToken, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	must(t, json.Unmarshal(body, v))
}

// checklist maps a drill's checklist items to their status.
func checklist(run store.DrillRun) map[string]string {
	out := map[string]string{}
	for _, c := range run.Checklist {
		out[c.Item] = c.Status
	}
	return out
}

// wantPassed fails unless the drill passed with exit code 0, and its
// report carries an RTO, an RPO and the six checklist items.
func wantPassed(t *testing.T, code int, out string, run store.DrillRun) {
	t.Helper()
	if code != app.ExitOK || run.State != store.DrillPassed {
		t.Fatalf("drill %s: exit %d, state %s: %s", run.Drill, code, run.State, run.Reason)
	}
	if run.RTO == nil || run.RPO == nil || len(run.Checklist) != 6 {
		t.Fatalf("drill %s: RTO %+v, RPO %+v, %d checklist items", run.Drill, run.RTO, run.RPO, len(run.Checklist))
	}
	for _, want := range []string{"## Objectives", "| RTO |", "| RPO |", "[x] ✓ Failover completed within RTO", "[x] ✓ Data loss within RPO", "## Time to recover, by phase"} {
		if !strings.Contains(out, want) {
			t.Errorf("the printed report lacks %q", want)
		}
	}
}

// heartbeatOn reads the heartbeat row of database shop at dsn.
func heartbeatOn(t *testing.T, pg *testharness.PG, dsn string) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ts time.Time
	must(t, pg.QueryRow(ctx, dsn, "SELECT ts FROM drguard_heartbeat WHERE id = 'drguard'", &ts))
	return ts
}

// configOf loads a drill test's configuration.
func configOf(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.Load(path, app.KnownActions())
	must(t, err)
	return c
}

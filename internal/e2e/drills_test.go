package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// The plan's four quarterly drills and its security-breach drill, each run
// with `drguard drill --execute` against a drguard guarding real
// components. The failures are injected for real: a database dropped, the
// primary stopped, an integrity invariant violated with SQL, a security
// alert posted to a real Alertmanager.

// TestDrillQ1DatabaseFailureAndRestore: the shop database is dropped; the
// readiness probe detects it; the policy restores the latest backup
// (`drguard restore`, a gated destructive step the drill approves) into a
// database aside and swaps it in; the RPO is the age of the backup's newest
// heartbeat at the failure. (Restoring into a recreated empty database
// would not do: the readiness probe passes on it, the alert resolves and
// the run ends before the restore — an earlier version of this drill
// showed it.)
func TestDrillQ1DatabaseFailureAndRestore(t *testing.T) {
	e := newDrillEnv(t, false)
	port := e.pg.PrimaryPort
	restoreEnv := fmt.Sprintf("{%s: '1', AWS_ACCESS_KEY_ID: %s, AWS_SECRET_ACCESS_KEY: %s, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: /nonexistent, AWS_SHARED_CREDENTIALS_FILE: /nonexistent}",
		asDrguard, e.s3.AccessKey, e.s3.SecretKey)
	cfg := e.config(false, "1h", commonProbes("database_failure")+fmt.Sprintf(`policies:
  - name: database-failure
    matchers: ['scenario="database_failure"', 'service="shop"']
    steps:
      - {name: announce, action: notify.webhook, params: {status: Investigating a database failure, incident: "{{ .Incident.ID }}"}, timeout: 10s, on_failure: continue}
      - {name: create-restore-database, action: exec, params: {argv: %s}, timeout: 30s}
      - name: restore-backup
        action: exec
        params:
          argv: [%q, restore, %q, --target=primary, --backup=latest, %q]
          env: %s
        timeout: 2m
        destructive: true
        approval: {required: true, expires: 10m}
      - {name: swap-in, action: exec, params: {argv: %s}, timeout: 30s, verify: {probe: pg-ready, within: 30s}}
drills:
  - name: q1-database-restore
    policy: database-failure
    inject:
      steps:
        - {name: drop-database, action: exec, params: {argv: %s}, timeout: 30s}
    recovered_when: pg-ready
    heartbeat: pg-heartbeat
    auto_approve: true
    timeout: 2m
    schedule: {every: 90d}
`, e.sql(port, "postgres", "CREATE DATABASE shop_restore"), os.Args[0], "--config.file="+e.cfgPath, "--into="+e.pg.PrimaryDSN("shop_restore"), restoreEnv,
		e.sql(port, "postgres", "ALTER DATABASE shop_restore RENAME TO shop"), e.sql(port, "postgres", "DROP DATABASE shop WITH (FORCE)")))
	d := e.drguardWith(t, cfg, "")
	svc, err := backup.New(backup.Options{Config: configOf(t, e.cfgPath)})
	must(t, err)
	ms, err := svc.Catalog(context.Background(), "primary")
	if err != nil || len(ms) != 1 || ms[0].Heartbeat == nil {
		t.Fatalf("backup catalog: %v, %+v", err, ms)
	}
	time.Sleep(2 * time.Second) // the primary's heartbeat moves on past the backup's

	code, out, run := execute(t, d, "q1-database-restore")
	wantPassed(t, code, out, run)
	inBackup := ms[0].Heartbeat.UTC()
	if !run.RPO.From.Equal(inBackup) {
		t.Errorf("the restored database's heartbeat %s, want the backup's %s", run.RPO.From, inBackup)
	}
	age := run.InjectedAt.Sub(inBackup).Seconds()
	// The newest heartbeat before the failure is at most one interval old
	// (and the injection follows its reading by milliseconds).
	if diff := age - run.RPO.Seconds; diff < 0 || diff > beat.Seconds()+0.1 || run.RPO.Seconds < 2 {
		t.Errorf("RPO %.3fs, want the age of the backup's heartbeat at the failure, %.3fs, within one heartbeat interval (%s)", run.RPO.Seconds, age, beat)
	}
	evidence := run.Checklist[0].Evidence
	if !strings.Contains(evidence, "the serving database holds backup primary/"+ms[0].ID) {
		t.Errorf("backup restoration evidence: %s", evidence)
	}
	approved := false
	for _, ev := range run.Log {
		approved = approved || ev.Kind == "auto_approved" && strings.Contains(ev.Message, "restore-backup")
	}
	if !approved {
		t.Errorf("the drill did not approve the restore: %+v", run.Log)
	}
}

// TestDrillQ2RegionFailover: the WAL receiver stops (the replica falls
// behind), then the primary is stopped; the readiness probe detects it;
// the policy promotes the replica in RDS (fake) and for real, moves DNS
// (fake) and scales the DR application (kube-apiserver). The RPO equals
// the replica's lag at the failure within one heartbeat interval.
func TestDrillQ2RegionFailover(t *testing.T) {
	e := newDrillEnv(t, true)
	d := e.drguardWith(t, e.config(false, "1h", commonProbes("region_failure")+regionPolicy(false)+fmt.Sprintf(`drills:
  - name: q2-region-failover
    policy: region-failure
    inject:
      steps:
        - {name: stop-primary, action: exec, params: {argv: %s}, timeout: 30s}
    recovered_when: app-ready
    heartbeat: pg-heartbeat
    serving_target: replica
    auto_approve: true
    timeout: 2m
`, e.stopPrimary("immediate"))), "")
	e.pg.StopWALReceiver()
	time.Sleep(1500 * time.Millisecond)
	replicaBeat := heartbeatOn(t, e.pg, e.pg.ReplicaDSN("shop"))

	code, out, run := execute(t, d, "q2-region-failover")
	wantPassed(t, code, out, run)
	lag := run.InjectedAt.Sub(replicaBeat).Seconds()
	if diff := lag - run.RPO.Seconds; diff < 0 || diff > beat.Seconds()+0.1 {
		t.Errorf("RPO %.3fs; the replica's lag at the failure was %.3fs: want them within one heartbeat interval (%s)", run.RPO.Seconds, lag, beat)
	}
	if !run.RPO.From.Equal(replicaBeat) {
		t.Errorf("the promoted replica's heartbeat %s, want %s (read only after it replayed what it received)", run.RPO.From, replicaBeat)
	}
	var inRecovery bool
	must(t, e.pg.QueryRow(context.Background(), e.pg.ReplicaDSN("postgres"), "SELECT pg_is_in_recovery()", &inRecovery))
	if inRecovery {
		t.Error("the replica was not promoted")
	}
	if len(e.aws.Calls("PromoteReadReplica")) != 1 || len(e.aws.Calls("ChangeResourceRecordSets")) != 1 {
		t.Errorf("AWS calls: %d PromoteReadReplica, %d ChangeResourceRecordSets", len(e.aws.Calls("PromoteReadReplica")), len(e.aws.Calls("ChangeResourceRecordSets")))
	}
	wantReplicas(t, e, "fruitfulplanet-app", 10)
}

// regionPolicy is the plan's region failover: tell the status page,
// promote the RDS read replica (fake) and the streaming replica (real),
// point DNS at the DR region (fake), scale the DR application. gated puts
// the promotion behind an approval.
func regionPolicy(gated bool) string {
	approval := ""
	if gated {
		approval = "approval: {required: true, expires: 10m}, "
	}
	return fmt.Sprintf(`policies:
  - name: region-failure
    matchers: ['scenario="region_failure"', 'service="shop"']
    steps:
      - {name: announce, action: notify.webhook, params: {status: Failing over to the DR region, incident: "{{ .Incident.ID }}"}, timeout: 10s, on_failure: continue}
      - {name: promote-rds, action: aws.rds.promote_read_replica, params: {target: aws-dr, instance: shop-replica-eu}, timeout: 30s}
      - {name: promote-replica, action: postgres.promote, params: {target: replica}, timeout: 60s, %son_failure: escalate}
      - {name: dns-failover, action: aws.route53.upsert_record, params: {target: aws-dr, hosted_zone_id: Z123, name: shop.example., value: dr.shop.example., wait: true, poll_interval: 100ms}, timeout: 30s}
      - {name: scale-dr-app, action: kubernetes.scale, params: {target: k8s, name: fruitfulplanet-app, replicas: 10}, timeout: 30s, verify: {probe: app-ready, within: 30s}}
`, approval)
}

// corruptionPolicy is the plan's data corruption recovery: stop writes,
// restore RDS to before the corruption (fake), then repair the serving
// database (db, its port) for real, switch the application's
// DATABASE_URL and resume. gated puts the repair behind an approval.
func corruptionPolicy(e *drillEnv, t *testing.T, port int, gated bool) string {
	url := t.TempDir() + "/database_url"
	must(t, os.WriteFile(url, []byte("postgres://app@restored/shop\n"), 0o600))
	approval := ""
	if gated {
		approval = "approval: {required: true, expires: 10m}, "
	}
	// Resuming writes must not wait for the corruption's alert: once the
	// repair makes the integrity check pass, the alert resolves, and only
	// a non-destructive step of an on_resolved: continue policy still
	// runs. (A drill showed the run ending obsolete with the application
	// scaled to 0.)
	return fmt.Sprintf(`
  - name: data-corruption
    matchers: ['scenario="data_corruption"', 'service="shop"']
    on_resolved: continue
    steps:
      - {name: announce, action: notify.webhook, params: {status: Investigating data inconsistencies, incident: "{{ .Incident.ID }}"}, timeout: 10s, on_failure: continue}
      - {name: stop-writes, action: kubernetes.scale, params: {target: k8s, name: fruitfulplanet-app, replicas: 0}, timeout: 30s}
      - {name: restore-point-in-time, action: aws.rds.restore_to_point_in_time, params: {target: aws-dr, source_instance: shop-prod, target_instance: shop-restored, restore_time: last_known_good, margin: 1m}, timeout: 30s}
      - {name: wait-restored, action: aws.rds.wait_available, params: {target: aws-dr, instance: shop-restored, poll_interval: 100ms}, timeout: 30s}
      - {name: switch-database, action: kubernetes.patch_secret, params: {target: k8s, name: app-secrets, value_files: {DATABASE_URL: %q}}, timeout: 30s}
      - {name: repair, action: exec, params: {argv: %s}, timeout: 30s, %son_failure: escalate}
      - {name: resume, action: kubernetes.scale, params: {target: k8s, name: fruitfulplanet-app, replicas: previous, from_step: stop-writes}, timeout: 30s, destructive: false}
`, url, e.sql(port, "shop", "DELETE FROM orders WHERE user_id NOT IN (SELECT id FROM users)"), approval)
}

// integrityProbe checks the invariant no-orphan-orders on target.
func integrityProbe(target string) string {
	return fmt.Sprintf(`  - name: integrity
    type: postgres_integrity
    target: %s
    scenario: data_corruption
    severity: critical
    interval: %s
    timeout: %[2]s
    failure_threshold: 1
    params:
      checks:
        - {name: no-orphan-orders, sql: "SELECT count(*) FROM orders o LEFT JOIN users u ON u.id = o.user_id WHERE u.id IS NULL", expect: "0"}
`, target, beat)
}

// orphan is the SQL that violates the invariant: an order of no user.
const orphan = "INSERT INTO orders (user_id) VALUES (999999)"

// TestDrillQ3DataCorruption: an order without its user is inserted; the
// integrity probe detects it; the policy stops writes, restores RDS to the
// last known good time (fake), repairs the data, switches the
// application's database URL and resumes it.
func TestDrillQ3DataCorruption(t *testing.T) {
	e := newDrillEnv(t, false)
	port := e.pg.PrimaryPort
	d := e.drguardWith(t, e.config(false, "1h", commonProbes("database_failure")+integrityProbe("primary")+
		"policies:"+corruptionPolicy(e, t, port, true)+fmt.Sprintf(`drills:
  - name: q3-data-corruption
    policy: data-corruption
    inject:
      steps:
        - {name: orphan-order, action: exec, params: {argv: %s}, timeout: 30s}
    recovered_when: app-ready
    heartbeat: pg-heartbeat
    serving_target: primary
    auto_approve: true
    timeout: 2m
`, e.sql(port, "shop", orphan))), "")
	code, out, run := execute(t, d, "q3-data-corruption")
	wantPassed(t, code, out, run)
	if run.Incidents[0].Source != "probe" || !strings.Contains(run.Incidents[0].Summary, "integrity") {
		t.Errorf("incident %+v, want the integrity probe's", run.Incidents[0])
	}
	if r := e.aws.Calls("RestoreDBInstanceToPointInTime"); len(r) != 1 || r[0].Form.Get("RestoreTime") == "" {
		t.Errorf("PITR restore calls: %+v", r)
	}
	wantReplicas(t, e, "fruitfulplanet-app", 3)
	if run.RPO.Seconds > beat.Seconds() {
		t.Errorf("RPO %.3fs: the repaired primary lost nothing", run.RPO.Seconds)
	}
}

// TestDrillQ4FullDisaster: region failure and data corruption in one drill,
// with four-eyes on: an order of no user reaches the replica, then the
// primary stops; two incidents open; the drill's own approvals are
// refused (it requested the runs), two people approve the promotion and
// one the repair, which runs on the promoted replica; the communication
// plan runs throughout.
func TestDrillQ4FullDisaster(t *testing.T) {
	e := newDrillEnv(t, true)
	d := e.drguardWith(t, e.config(true, "1h", commonProbes("region_failure")+integrityProbe("replica")+
		regionPolicy(true)+corruptionPolicy(e, t, e.pg.ReplicaPort, true)+fmt.Sprintf(`drills:
  - name: q4-full-disaster
    policies: [region-failure, data-corruption]
    scenario: full_disaster
    inject:
      steps:
        - {name: orphan-order, action: exec, params: {argv: %s}, timeout: 30s}
        - {name: stop-primary, action: exec, params: {argv: %s}, timeout: 30s}
    recovered_when: integrity
    heartbeat: pg-heartbeat
    serving_target: replica
    auto_approve: true
    timeout: 2m
`, e.sql(e.pg.PrimaryPort, "shop", orphan), e.stopPrimary("fast"))), "")
	type result struct {
		code int
		out  string
		run  store.DrillRun
	}
	done := make(chan result, 1)
	go func() {
		code, out, run := execute(t, d, "q4-full-disaster")
		done <- result{code, out, run}
	}()
	approve := func(step, token string) {
		t.Helper()
		var id string
		testharness.Eventually(t, time.Minute, "an approval of "+step, func() bool {
			var list struct {
				Approvals []struct {
					ID, Step, RequestedBy string
					ApprovedBy            []string
				}
			}
			d.getJSON(t, "/remediate", &list)
			for _, a := range list.Approvals {
				if a.Step == step && a.RequestedBy == "drill:q4-full-disaster" {
					id = a.ID
					return true
				}
			}
			return false
		})
		testharness.Eventually(t, 10*time.Second, "the drill's own approval of "+step+" to be refused", func() bool {
			var list struct {
				Drills []struct{ Drill, Running string }
			}
			d.getJSON(t, "/api/v1/drills", &list)
			var run store.DrillRun
			d.getJSON(t, "/api/v1/drills/runs/"+list.Drills[0].Running, &run)
			for _, ev := range run.Log {
				if ev.Kind == "auto_approve_refused" && strings.Contains(ev.Message, "step "+step+" ") {
					return true
				}
			}
			return false
		})
		code, body := d.do(t, "POST", "/remediate/"+id+"/approve", token, strings.NewReader(`{"comment":"drill"}`))
		if code != 200 {
			t.Fatalf("approve %s as %s: %d %s", step, token, code, body)
		}
	}
	approve("promote-replica", bobToken)
	approve("promote-replica", carolToken) // four-eyes: a destructive step needs two people
	testharness.Eventually(t, time.Minute, "the replica to be promoted", func() bool {
		var inRecovery bool
		err := e.pg.QueryRow(context.Background(), e.pg.ReplicaDSN("postgres"), "SELECT pg_is_in_recovery()", &inRecovery)
		return err == nil && !inRecovery
	})
	approve("repair", bobToken)
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the drill did not end")
	}
	wantPassed(t, r.code, r.out, r.run)
	if len(r.run.Incidents) != 2 {
		t.Fatalf("incidents %+v, want the region failure's and the corruption's", r.run.Incidents)
	}
	refused, approvals := 0, 0
	for _, ev := range r.run.Log {
		if ev.Kind == "auto_approve_refused" {
			refused++
		}
	}
	for _, p := range r.run.Phases {
		if p.Kind == store.PhaseApproval {
			approvals++
		}
	}
	if refused < 2 || approvals != 2 {
		t.Errorf("%d refused auto-approvals (want the drill refused for both gated steps), %d approval phases (want 2)", refused, approvals)
	}
	heard := strings.Join(subjects(e.hook), "\n")
	for _, want := range []string{"DR drill q4-full-disaster: starting", "DR drill q4-full-disaster: passed", "Service Status Update"} {
		if !strings.Contains(heard, want) {
			t.Errorf("the status page did not hear %q; it heard:\n%s", want, heard)
		}
	}
}

// TestDrillSecurityBreach: a security alert is posted to a real
// Alertmanager, which notifies drguard; the policy isolates the
// application, rotates its secrets, tells the team and, approved, brings
// the application back.
func TestDrillSecurityBreach(t *testing.T) {
	e := newDrillEnv(t, false)
	port := testharness.FreePort(t)
	am := testharness.Alertmanager(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/alerts", port), webhookToken)
	secret := t.TempDir() + "/session_secret"
	must(t, os.WriteFile(secret, []byte("rotated\n"), 0o600))
	alert := `[{"labels": {"alertname": "SuspiciousAccess", "scenario": "security_breach", "service": "shop", "severity": "critical"}, "annotations": {"summary": "unusual access pattern (drill)"}}]`
	cfg := e.config(false, "1h", commonProbes("database_failure")+fmt.Sprintf(`policies:
  - name: security-breach
    matchers: ['scenario="security_breach"', 'service="shop"']
    steps:
      - {name: isolate, action: kubernetes.scale, params: {target: k8s, name: fruitfulplanet-app, replicas: 0}, timeout: 30s, approval: {required: true, expires: 10m}}
      - {name: rotate-secrets, action: kubernetes.patch_secret, params: {target: k8s, name: app-secrets, value_files: {SESSION_SECRET: %q}}, timeout: 30s, approval: {required: true, expires: 10m}}
      - {name: tell-the-team, action: notify.webhook, params: {status: Security incident; the application is isolated and its secrets rotated, incident: "{{ .Incident.ID }}"}, timeout: 10s}
      - {name: restore-service, action: kubernetes.scale, params: {target: k8s, name: fruitfulplanet-app, replicas: previous, from_step: isolate}, timeout: 30s, approval: {required: true, expires: 10m}, verify: {probe: app-ready, within: 30s}}
drills:
  - name: security-breach
    policy: security-breach
    inject:
      steps:
        - {name: security-alert, action: http, params: {url: %q, method: POST, body: %q, expect_status: [200]}, timeout: 10s}
    recovered_when: app-ready
    heartbeat: pg-heartbeat
    auto_approve: true
    timeout: 2m
`, secret, am.URL+"/api/v2/alerts", alert))
	d := e.drguardWith(t, cfg, fmt.Sprintf("127.0.0.1:%d", port))
	code, out, run := execute(t, d, "security-breach")
	wantPassed(t, code, out, run)
	if in := run.Incidents[0]; in.Source != "alertmanager" {
		t.Errorf("incident %+v, want one from Alertmanager", in)
	}
	wantReplicas(t, e, "fruitfulplanet-app", 3)
	s, err := e.kube.AdminClient(t).CoreV1().Secrets(e.ns).Get(context.Background(), "app-secrets", metav1.GetOptions{})
	must(t, err)
	if string(s.Data["SESSION_SECRET"]) != "rotated" || string(s.Data["KEEP"]) != "kept" {
		t.Errorf("app-secrets after the drill: %v", s.Data)
	}
}

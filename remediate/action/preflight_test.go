package action

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// preflight builds the named action over cfg and preflights one step.
func preflight(t *testing.T, cfg *config.Config, name string, params map[string]any) Preflight {
	t.Helper()
	a, err := Registry[name].New(Deps{Config: cfg})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return a.(Preflighter).Preflight(ctx, Request{Step: "s", Policy: "p", Params: jsonRound(t, params)})
}

// verdicts writes a preflight's checks as "check=verdict" in order.
func verdicts(pf Preflight) string {
	var out []string
	for _, c := range pf.Checks {
		out = append(out, c.Check+"="+c.Verdict)
	}
	return strings.Join(out, " ")
}

// find returns the first check named check.
func find(pf Preflight, check string) Check {
	for _, c := range pf.Checks {
		if c.Check == check {
			return c
		}
	}
	return Check{}
}

// TestPreflightLocal: exec finds its program without running it, a
// notify step needs its notifier, an http step's host must accept a
// connection (the request is not sent), and bad rendered params fail.
func TestPreflightLocal(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script.sh")
	must(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644))
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer srv.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + closed.Addr().String() + "/x"
	closed.Close()
	cfg := &config.Config{Notifiers: []config.Notifier{{Name: "slack-incidents", Type: config.NotifierSlack}}}
	tests := []struct {
		name, action string
		params       map[string]any
		want         string // verdicts
		reason       string // in the first failing or only check
	}{
		{"program on PATH", "exec", map[string]any{"argv": []any{"true"}}, "program=pass", "exists and is executable (not run)"},
		{"program missing", "exec", map[string]any{"argv": []any{"no-such-drguard-program"}}, "program=fail", "not found on PATH"},
		{"not executable", "exec", map[string]any{"argv": []any{notExec}}, "program=fail", "permission denied"},
		{"missing dir", "exec", map[string]any{"argv": []any{"true"}, "dir": filepath.Join(dir, "nope")}, "program=pass dir=fail", "working directory does not exist"},
		{"notifier", "notify.slack", map[string]any{}, "notifier=pass", "nothing was sent"},
		{"no notifier", "notify.email", map[string]any{}, "notifier=fail", "no email notifier is configured"},
		{"http reachable", "http", map[string]any{"url": srv.URL + "/alerts"}, "connect=pass", "request is not sent"},
		{"http unreachable", "http", map[string]any{"url": closedURL}, "connect=fail", "cannot connect"},
		{"bad params", "exec", map[string]any{"argv": []any{}}, "params=fail", "argv"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pf := preflight(t, cfg, tc.action, tc.params)
			if got := verdicts(pf); got != tc.want {
				t.Fatalf("verdicts %q, want %q: %+v", got, tc.want, pf.Checks)
			}
			c := pf.Checks[0]
			for _, x := range pf.Checks {
				if x.Verdict == VerdictFail {
					c = x
					break
				}
			}
			if !strings.Contains(c.Reason, tc.reason) {
				t.Errorf("reason %q, want %q", c.Reason, tc.reason)
			}
		})
	}
	if hits != 0 {
		t.Errorf("the http preflight sent %d requests", hits)
	}
}

// TestPreflightAWS: against the AWS protocol fake, with Describe and Get
// calls only: a read replica to promote, a restore whose target is free
// (and which creates the instance a later wait needs), a missing hosted
// zone.
func TestPreflightAWS(t *testing.T) {
	f := testharness.AWSFake(t)
	f.AddInstance("replica-eu", AWSInstanceReplica("prod"))
	f.AddInstance("prod", testharness.AWSInstance{Statuses: []string{"available"}, LatestRestorable: time.Now().Add(-5 * time.Minute)})
	f.AddHostedZone("Z123", "fruitfulplanet.com.")
	cfg := awsConfig(f)
	pf := preflight(t, cfg, "aws.rds.promote_read_replica", map[string]any{"instance": "replica-eu"})
	if got := verdicts(pf); got != "credentials=pass exists=pass replica=pass" {
		t.Errorf("promote: %s %+v", got, pf.Checks)
	}
	pf = preflight(t, cfg, "aws.rds.promote_read_replica", map[string]any{"instance": "prod"})
	if got := verdicts(pf); got != "credentials=pass exists=pass replica=warn" {
		t.Errorf("promote a primary: %s", got)
	}
	pf = preflight(t, cfg, "aws.rds.restore_to_point_in_time", map[string]any{"source_instance": "prod", "target_instance": "restored", "restore_time": "latest"})
	if got := verdicts(pf); got != "credentials=pass exists=pass restorable=pass target_free=pass" || len(pf.Creates) != 1 || pf.Creates[0] != "aws rds instance restored" {
		t.Errorf("restore: %s, creates %v", got, pf.Creates)
	}
	pf = preflight(t, cfg, "aws.rds.wait_available", map[string]any{"instance": "restored"})
	if c := find(pf, "exists"); c.Verdict != VerdictFail || c.Missing != "aws rds instance restored" {
		t.Errorf("wait for a missing instance: %+v", c)
	}
	record := map[string]any{"hosted_zone_id": "Z123", "name": "fruitfulplanet.com.", "value": "dr.example."}
	if got := verdicts(preflight(t, cfg, "aws.route53.upsert_record", record)); got != "credentials=pass exists=pass record=pass" {
		t.Errorf("route53: %s", got)
	}
	record["hosted_zone_id"] = "Z999"
	if c := find(preflight(t, cfg, "aws.route53.upsert_record", record), "exists"); c.Verdict != VerdictFail || !strings.Contains(c.Reason, "not found") {
		t.Errorf("route53 missing zone: %+v", c)
	}
	for _, op := range []string{"PromoteReadReplica", "RestoreDBInstanceToPointInTime", "ChangeResourceRecordSets"} {
		if n := len(f.Calls(op)); n != 0 {
			t.Errorf("a preflight called %s %d times", op, n)
		}
	}
}

// AWSInstanceReplica is an available read replica of source.
func AWSInstanceReplica(source string) testharness.AWSInstance {
	return testharness.AWSInstance{Statuses: []string{"available"}, Source: source}
}

// TestPreflightKubernetes: on a real kube-apiserver, as drguard's
// ServiceAccount bound to deploy/base's Role: every permission the plan's
// steps need is allowed and their objects exist; a Secret drguard cannot
// patch by name, and a missing workload, fail naming what is wrong; and
// nothing changes.
func TestPreflightKubernetes(t *testing.T) {
	e := newKubeEnv(t)
	e.seed(t)
	secret := filepath.Join(t.TempDir(), "url")
	must(t, os.WriteFile(secret, []byte("postgres://new\n"), 0o600))
	tests := []struct {
		name, action string
		params       map[string]any
		want         string
		reason       string
	}{
		{"delete pod", "kubernetes.delete_pod", map[string]any{"name": "postgres-0"}, "credentials=pass rbac=pass rbac=pass exists=pass", "exists"},
		{"pod logs", "kubernetes.pod_logs", map[string]any{"name": "postgres-0"}, "credentials=pass rbac=pass exists=pass", "exists"},
		{"scale", "kubernetes.scale", map[string]any{"name": "fruitfulplanet-app", "replicas": 0}, "credentials=pass rbac=pass rbac=pass exists=pass", "serviceaccount"},
		{"rollout restart", "kubernetes.rollout_restart", map[string]any{"name": "fruitfulplanet-app"}, "credentials=pass rbac=pass exists=pass", "exists"},
		{"patch app-secrets", "kubernetes.patch_secret", map[string]any{"name": "app-secrets", "value_files": map[string]any{"DATABASE_URL": secret}}, "credentials=pass rbac=pass exists=pass value_file=pass", "not shown"},
		{"patch another secret", "kubernetes.patch_secret", map[string]any{"name": "other-secret", "values": map[string]any{"A": "b"}}, "credentials=pass rbac=fail exists=fail", `may not patch secrets "other-secret"`},
		{"missing workload", "kubernetes.scale", map[string]any{"name": "no-such-app", "replicas": 1}, "credentials=pass rbac=pass rbac=pass exists=fail", "not found"},
		{"daemonsets are not granted", "kubernetes.rollout_restart", map[string]any{"name": "fruitfulplanet-app", "kind": "daemonset"}, "credentials=pass rbac=fail exists=fail", `the Role must grant verb "patch" on "daemonsets"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pf := preflight(t, e.cfg, tc.action, tc.params)
			if got := verdicts(pf); got != tc.want {
				t.Fatalf("verdicts %q, want %q: %+v", got, tc.want, pf.Checks)
			}
			var all []string
			for _, c := range pf.Checks {
				all = append(all, c.Target+": "+c.Reason)
			}
			if text := strings.Join(all, "\n"); !strings.Contains(text, tc.reason) {
				t.Errorf("want %q in:\n%s", tc.reason, text)
			}
		})
	}
	ctx := e.ctx(t)
	sc, err := e.admin.AppsV1().Deployments(e.ns).GetScale(ctx, "fruitfulplanet-app", metav1.GetOptions{})
	must(t, err)
	if sc.Spec.Replicas != 3 {
		t.Errorf("the preflight changed the deployment: %d replicas", sc.Spec.Replicas)
	}
	if pf := preflight(t, e.cfg, "kubernetes.scale", map[string]any{"name": "no-such-app", "replicas": 1}); find(pf, "exists").Missing != "kubernetes deployments "+e.ns+"/no-such-app" {
		t.Errorf("missing key %q", find(pf, "exists").Missing)
	}
}

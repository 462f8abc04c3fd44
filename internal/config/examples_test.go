package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestExamplesLoad(t *testing.T) {
	t.Setenv("DRGUARD_WEBHOOK_TOKEN", "example-webhook-token")
	t.Setenv("DRGUARD_ADMIN_TOKEN", "example-admin-token")
	for _, name := range []string{"local.yaml", "drguard.yaml"} {
		t.Run(name, func(t *testing.T) {
			// Any action: internal/app's TestExamplesPassCheck checks the
			// steps against the real action registry.
			c, err := Load(filepath.Join("..", "..", "deploy", "examples", name), Known{})
			if err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
			for _, w := range c.Warnings() {
				t.Logf("%v", w)
			}
		})
	}
}

func TestLocalExample(t *testing.T) {
	t.Setenv("DRGUARD_WEBHOOK_TOKEN", "example-webhook-token")
	t.Setenv("DRGUARD_ADMIN_TOKEN", "example-admin-token")
	c, err := Load(filepath.Join("..", "..", "deploy", "examples", "local.yaml"), knownExecHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("local.yaml should load without warnings:\n%v", c.Warnings())
	}
	if c.Auth.Webhook.BearerToken.Reveal() != "example-webhook-token" || c.Auth.Users[0].Token.Reveal() != "example-admin-token" {
		t.Error("tokens not taken from DRGUARD_WEBHOOK_TOKEN and DRGUARD_ADMIN_TOKEN")
	}
	gated := c.Policies[0].Steps[1]
	if !gated.Approval.Required || gated.Approval.Expires != model.Duration(15*time.Minute) {
		t.Errorf("second step approval = %+v, want required, 15m", gated.Approval)
	}
}

func TestLocalExampleNeedsItsEnvVars(t *testing.T) {
	t.Setenv("DRGUARD_ADMIN_TOKEN", "example-admin-token")
	t.Setenv("DRGUARD_WEBHOOK_TOKEN", "") // restored after the test
	os.Unsetenv("DRGUARD_WEBHOOK_TOKEN")
	_, err := Load(filepath.Join("..", "..", "deploy", "examples", "local.yaml"), knownExecHTTP())
	if err == nil {
		t.Fatal("want an error without DRGUARD_WEBHOOK_TOKEN")
	}
	wantAll(t, err.Error(), "environment variable DRGUARD_WEBHOOK_TOKEN is not set")
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, webhookAuth+`policies:
  - name: p
    matchers: ['alertname="X"']
    steps:
      - action: exec
      - action: http
        approval: {required: true}
        verify: {probe: pr}
probes:
  - {name: pr, type: http, interval: 5s}
  - {name: pr2, type: http}
`)
	min, hour := model.Duration(time.Minute), model.Duration(time.Hour)
	s1, s2 := c.Policies[0].Steps[0], c.Policies[0].Steps[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen_address", c.Server.ListenAddress, ":9095"},
		{"max_body_bytes", c.Server.MaxBodyBytes, int64(1 << 20)},
		{"shutdown_timeout", c.Server.ShutdownTimeout, model.Duration(10 * time.Second)},
		{"storage.path", c.Storage.Path, "data"},
		{"destructive_budget", c.Guardrails.DestructiveBudget, 3},
		{"destructive_window", c.Guardrails.DestructiveWindow, hour},
		{"approval_expiry", c.Guardrails.ApprovalExpiry, hour},
		{"step_timeout", c.Guardrails.StepTimeout, 5 * min},
		{"target_label", c.Policies[0].TargetLabel, "target"},
		{"step name", s1.Name, "exec-0"},
		{"step 2 name", s2.Name, "http-1"},
		{"step timeout", s1.Timeout, 5 * min},
		{"on_failure", s1.OnFailure, "abort"},
		{"ungated expires", s1.Approval.Expires, model.Duration(0)},
		{"gated expires", s2.Approval.Expires, hour},
		{"verify within", s2.Verify.Within, 5 * min},
		{"probe interval", c.Probes[1].Interval, model.Duration(30 * time.Second)},
		{"probe timeout", c.Probes[1].Timeout, model.Duration(10 * time.Second)},
		{"short probe timeout", c.Probes[0].Timeout, model.Duration(5 * time.Second)},
		{"failure_threshold", c.Probes[1].FailureThreshold, 3},
		{"success_threshold", c.Probes[1].SuccessThreshold, 1},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestExplicitZeroDestructiveBudget(t *testing.T) {
	c := mustParse(t, webhookAuth+minimalPolicy+"guardrails: {destructive_budget: 0}\n")
	if c.Guardrails.DestructiveBudget != 0 {
		t.Errorf("destructive_budget = %d, want the explicit 0", c.Guardrails.DestructiveBudget)
	}
}

func TestBackupDefaultsFromTarget(t *testing.T) {
	t.Setenv("TEST_DSN", "postgres://u:p@h/db")
	c := mustParse(t, webhookAuth+pgTargetsWithReplica+minimalPolicy+`backups: [{name: b, target: db, destination: bucket, key_file: /etc/hostname}]
restore_tests: [{name: r, backup: b, interval: 1d, scratch_target: scratch}]
`)
	b := c.Backups[0]
	day := model.Duration(24 * time.Hour)
	if b.Service != "svc" || b.Interval != model.Duration(6*time.Hour) ||
		b.Retention.Daily != 30*day || b.Retention.Weekly != 90*day || b.Retention.Monthly != 365*day {
		t.Errorf("backup defaults = %+v", b)
	}
}

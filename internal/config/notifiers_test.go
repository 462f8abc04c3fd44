package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestNotifiersLoad(t *testing.T) {
	t.Setenv("SLACK_URL", "https://hooks.slack.com/services/T0/B0/SECRETPART")
	dir := t.TempDir()
	pw := filepath.Join(dir, "smtp.pw")
	if err := os.WriteFile(pw, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, webhookAuth+minimalPolicy+`notifiers:
  - {name: slack, type: slack, url: "${SLACK_URL}", status_interval: 10m}
  - name: mail
    type: email
    smarthost: smtp.example.com:587
    from: drguard@example.com
    to: [oncall@example.com, "Ops <ops@example.com>"]
    username: drguard
    password_file: `+pw+`
    status_updates: false
  - {name: page, type: webhook, url: "https://status.example.com/hook", matchers: ['severity="critical"']}
`)
	slack, mail, page := c.Notifiers[0], c.Notifiers[1], c.Notifiers[2]
	if slack.URL.Reveal() != "https://hooks.slack.com/services/T0/B0/SECRETPART" || slack.StatusInterval != model.Duration(10*time.Minute) ||
		slack.RecoveryInterval != DefaultRecoveryInterval || !slack.StatusUpdatesOn() {
		t.Errorf("slack = %+v", slack)
	}
	if mail.Password.Reveal() != "hunter2" || mail.StatusUpdatesOn() || mail.StatusInterval != DefaultStatusInterval {
		t.Errorf("mail = %+v", mail)
	}
	if page.Matchers[0] != `severity="critical"` {
		t.Errorf("page = %+v", page)
	}
	if n, ok := c.Notifier("page"); !ok || n.Type != NotifierWebhook {
		t.Errorf("Notifier(page) = %v, %v", n, ok)
	}
}

func TestNotifierAndCloudProblems(t *testing.T) {
	tests := []struct{ name, yml, want string }{
		{"email needs a relay", "notifiers: [{name: m, type: email}]\n", "notifiers[0].smarthost: smarthost is required"},
		{"email needs from", "notifiers: [{name: m, type: email, smarthost: 'h:25', to: [a@b.c]}]\n", "notifiers[0].from: from is required"},
		{"email bad to", "notifiers: [{name: m, type: email, smarthost: 'h:25', from: a@b.c, to: [nobody]}]\n", `notifiers[0].to[0]: "nobody" is not an email address`},
		{"email no url", "notifiers: [{name: m, type: email, smarthost: 'h:25', from: a@b.c, to: [a@b.c], url: 'mailto:a@b.c'}]\n", "an email notifier has no url"},
		{"email bad relay", "notifiers: [{name: m, type: email, smarthost: relay, from: a@b.c, to: [a@b.c]}]\n", `smarthost "relay" must be host:port`},
		{"password without user", "notifiers: [{name: m, type: email, smarthost: 'h:25', from: a@b.c, to: [a@b.c], password: x}]\n", "username is required with a password"},
		{"bad matcher", "notifiers: [{name: s, type: slack, url: 'https://x', matchers: ['severity=~(']}]\n", `notifiers[0].matchers[0]: invalid matcher`},
		{"zero interval", "notifiers: [{name: s, type: webhook, url: 'https://x', status_interval: 0s, recovery_interval: -1s}]\n", "recovery_interval"},
		{"missing url file", "notifiers: [{name: s, type: slack, url_file: /nonexistent/slack.url}]\n", "file /nonexistent/slack.url does not exist"},
		{"kube namespace", "targets: {kubernetes: [{name: k, namespace: Fruit_Planet}]}\n", `"Fruit_Planet" is not a valid namespace name`},
		{"kube context", "targets: {kubernetes: [{name: k, context: dr}]}\n", "context needs a kubeconfig"},
		{"aws attempts", "targets: {aws: [{name: a, max_attempts: -1}]}\n", "targets.aws[0].max_attempts: must be at least 1"},
		{"aws endpoint", "targets: {aws: [{name: a, endpoint: 'localhost:4566'}]}\n", "targets.aws[0].endpoint: invalid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseErr(t, webhookAuth+minimalPolicy+tt.yml, knownExecHTTP())
			wantAll(t, ps.Error(), tt.want)
			if strings.Contains(ps.Error(), "SECRETPART") {
				t.Errorf("a notifier URL leaked:\n%v", ps)
			}
		})
	}
}

func TestAWSDefaults(t *testing.T) {
	c := mustParse(t, webhookAuth+minimalPolicy+"targets: {aws: [{name: a, region: eu-west-1}]}\n")
	a := c.Targets.AWS[0]
	if a.MaxAttempts != DefaultAWSMaxAttempts || a.MaxBackoff != DefaultAWSMaxBackoff {
		t.Errorf("aws defaults = %+v", a)
	}
	if got, ok := c.Targets.AWSTarget("a"); !ok || got.Region != "eu-west-1" {
		t.Errorf("AWSTarget(a) = %+v, %v", got, ok)
	}
}

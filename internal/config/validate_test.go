package config

import (
	"errors"
	"strings"
	"testing"
)

// pgTargets defines one target of each kind a backup needs.
const pgTargets = `targets:
  postgres: [{name: db, service: svc, dsn: "${TEST_DSN}"}]
  s3: [{name: bucket, bucket: b}]
objectives:
  svc: {rpo: 1h, rto: 4h}
`

func TestValidationRules(t *testing.T) {
	t.Setenv("TEST_DSN", "postgres://u:p@h/db")
	withProbes := Known{Actions: knownExecHTTP().Actions, ProbeTypes: map[string]bool{"http": true, "postgres_ready": true}}
	rejectArgv := Known{Actions: map[string]func(map[string]any) error{
		"exec": func(p map[string]any) error {
			if _, ok := p["argv"].([]any); !ok {
				return errors.New("argv must be a list of strings")
			}
			return nil
		},
	}}
	tests := []struct {
		name  string
		yml   string
		known *Known
		want  string
	}{
		// server, storage, guardrails
		{"listen address", "server: {listen_address: '9095'}\n", nil, `server.listen_address: invalid address "9095"`},
		{"max body", "server: {max_body_bytes: -1}\n", nil, `server.max_body_bytes: must be greater than 0`},
		{"external url", "server: {external_url: drguard.local}\n", nil, `server.external_url: invalid URL "drguard.local": want an absolute http or https URL`},
		{"destructive budget", "guardrails: {destructive_budget: -1}\n", nil, `guardrails.destructive_budget: must not be negative`},
		{"objective rpo", "objectives: {svc: {rto: 4h}}\n", nil, `objectives.svc.rpo: must be greater than 0`},
		{"objective rto", "objectives: {svc: {rpo: 1h, rto: 0}}\n", nil, `objectives.svc.rto: must be greater than 0`},

		// auth
		{"basic auth username", "auth: {webhook: {basic_auth: {password: x}}}\n", nil, `auth.webhook.basic_auth.username: username is required`},
		{"basic auth password", "auth: {webhook: {basic_auth: {username: am}}}\n", nil, `auth.webhook.basic_auth.password: password (or password_file) is required`},
		{"user name", webhookAuth + "  users: [{role: admin, token: a}]\n", nil, `auth.users[0].name: user name is required`},
		{"user duplicate", webhookAuth + "  users: [{name: a, role: admin, token: a}, {name: a, role: viewer, token: b}]\n", nil, `auth.users[1].name: duplicate user name "a"`},
		{"user role missing", webhookAuth + "  users: [{name: a, token: a}]\n", nil, `auth.users[0].role: role is required: one of viewer, approver, admin`},
		{"user role unknown", webhookAuth + "  users: [{name: a, role: root, token: a}]\n", nil, `auth.users[0].role: unknown role "root"`},
		{"user token", webhookAuth + "  users: [{name: a, role: admin}]\n", nil, `auth.users[0].token: user "a" has no token`},
		{"shared token", webhookAuth + "  users: [{name: a, role: admin, token: t}, {name: b, role: viewer, token: t}]\n", nil, `auth.users[1].token: users "a" and "b" have the same token`},

		// targets
		{"target name", "targets: {http: [{url: 'http://x'}]}\n", nil, `targets.http[0].name: http target name is required`},
		{"target duplicate", "targets: {http: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]}\n", nil, `targets.http[1].name: duplicate http target name "a"`},
		{"postgres dsn", "targets: {postgres: [{name: a}]}\n", nil, `targets.postgres[0].dsn: dsn (or dsn_file) is required`},
		{"redis address", "targets: {redis: [{name: a, address: redis}]}\n", nil, `targets.redis[0].address: address "redis" must be host:port`},
		{"http url", "targets: {http: [{name: a, url: '/health'}]}\n", nil, `targets.http[0].url: invalid URL "/health"`},
		{"s3 bucket", "targets: {s3: [{name: a}]}\n", nil, `targets.s3[0].bucket: bucket is required`},

		// probes
		{"probe name", "probes: [{type: http}]\n", nil, `probes[0].name: probe name is required`},
		{"probe duplicate", "probes: [{name: a, type: http}, {name: a, type: http}]\n", nil, `probes[1].name: duplicate probe name "a"`},
		{"probe type", "probes: [{name: a}]\n", nil, `probes[0].type: type is required`},
		{"probe type unknown", "probes: [{name: a, type: ping}]\n", &withProbes, `probes[0].type: unknown probe type "ping" (known: http, postgres_ready)`},
		{"probe timeout", "probes: [{name: a, type: http, interval: 5s, timeout: 10s}]\n", nil, `probes[0].timeout: timeout 10s is longer than the interval 5s`},
		{"probe failure threshold", "probes: [{name: a, type: http, failure_threshold: -1}]\n", nil, `probes[0].failure_threshold: must be at least 1`},
		{"probe success threshold", "probes: [{name: a, type: http, success_threshold: -2}]\n", nil, `probes[0].success_threshold: must be at least 1`},
		{"probe target", "probes: [{name: a, type: http, target: web}]\n", nil, `probes[0].target: undefined target "web" in probe "a"`},

		// policies
		{"policy name", "policies: [{matchers: ['a=\"b\"'], steps: [{action: exec}]}]\n", nil, `policies[0].name: policy name is required`},
		{"matcher", "policies: [{name: p, matchers: ['severity=~critical|page\"'], steps: [{action: exec}]}]\n", nil, `policies[0].matchers[0]: invalid matcher "severity=~critical|page\""`},
		{"matcher syntax", "policies: [{name: p, matchers: ['alertname'], steps: [{action: exec}]}]\n", nil, `policies[0].matchers[0]: invalid matcher "alertname": bad matcher format`},
		{"target label", "policies: [{name: p, matchers: ['a=\"b\"'], target_label: 'my-label', steps: [{action: exec}]}]\n", nil, `policies[0].target_label: "my-label" is not a valid label name`},
		{"max runs count", "policies: [{name: p, matchers: ['a=\"b\"'], max_runs: {window: 1h}, steps: [{action: exec}]}]\n", nil, `policies[0].max_runs.count: must be at least 1`},
		{"max runs window", "policies: [{name: p, matchers: ['a=\"b\"'], max_runs: {count: 2}, steps: [{action: exec}]}]\n", nil, `policies[0].max_runs.window: must be greater than 0`},
		{"step action", "policies: [{name: p, matchers: ['a=\"b\"'], steps: [{name: s}]}]\n", nil, `policies[0].steps[0].action: action is required`},
		{"step duplicate", "policies: [{name: p, matchers: ['a=\"b\"'], steps: [{action: exec}, {action: exec, name: exec-0}]}]\n", nil, `policies[0].steps[1].name: duplicate step name "exec-0"`},
		{"step template", "policies: [{name: p, matchers: ['a=\"b\"'], steps: [{action: exec, params: {argv: [echo, '{{ .Labels.x']}}]}]\n", nil, `policies[0].steps[0].params.argv[1]: invalid template "{{ .Labels.x": unclosed action`},
		{"step template func", "policies: [{name: p, matchers: ['a=\"b\"'], steps: [{action: exec, params: {env: {X: '{{ shout .Labels.x }}'}}}]}]\n", nil, `policies[0].steps[0].params.env.X: invalid template "{{ shout .Labels.x }}": function "shout" not defined`},
		{"step params validator", "policies: [{name: p, matchers: ['a=\"b\"'], steps: [{action: exec, params: {argv: echo}}]}]\n", &rejectArgv, `policies[0].steps[0].params: action exec: argv must be a list of strings`},
		{"verify probe required", "policies: [{name: p, matchers: ['a=\"b\"'], steps: [{action: exec, verify: {within: 1m}}]}]\n", nil, `policies[0].steps[0].verify.probe: probe is required`},

		// backups, restore tests, notifiers
		{"backup name", pgTargets + "backups: [{target: db, destination: bucket, key_file: /etc/hostname}]\n", nil, `backups[0].name: backup name is required`},
		{"backup target", pgTargets + "backups: [{name: b, destination: bucket, key_file: /etc/hostname}]\n", nil, `backups[0].target: target is required`},
		{"backup destination", pgTargets + "backups: [{name: b, target: db, key_file: /etc/hostname}]\n", nil, `backups[0].destination: destination is required`},
		{"backup key", pgTargets + "backups: [{name: b, target: db, destination: bucket}]\n", nil, `backups[0].key_file: key_file is required: backups are encrypted`},
		{"backup key missing", pgTargets + "backups: [{name: b, target: db, destination: bucket, key_file: /nonexistent/k}]\n", nil, `backups[0].key_file: file /nonexistent/k does not exist`},
		{"backup undefined target", pgTargets + "backups: [{name: b, target: nope, destination: bucket, key_file: /etc/hostname}]\n", nil, `backups[0].target: undefined target "nope" in backup "b"`},
		{"backup target kind", pgTargets + "backups: [{name: b, target: bucket, destination: bucket, key_file: /etc/hostname}]\n", nil, `backups[0].target: target "bucket" of backup "b" is not a postgres target`},
		{"bad dsn", "targets: {postgres: [{name: db, dsn: 'postgres://u:secret@db:notaport/x'}]}\n", nil, `targets.postgres[0].dsn: the dsn of postgres target "db" is not a valid connection string`},
		{"backup of redis", "targets:\n  redis: [{name: cache, address: 'c:6379'}]\n  s3: [{name: bucket, bucket: b}]\nbackups: [{name: b, target: cache, destination: bucket, key_file: /etc/hostname}]\n", nil, `backups[0].target: backup "b": Redis backups do not exist in drguard: "cache" is a redis target`},
		{"backup destination kind", pgTargets + "backups: [{name: b, target: db, destination: db, key_file: /etc/hostname}]\n", nil, `backups[0].destination: undefined s3 target "db" in backup "b"`},
		{"restore test backup", "restore_tests: [{name: r, backup: nope, interval: 1d}]\n", nil, `restore_tests[0].backup: undefined backup "nope" in restore test "r"`},
		{"restore test interval", pgTargets + "backups: [{name: b, target: db, destination: bucket, key_file: /etc/hostname}]\nrestore_tests: [{name: r, backup: b}]\n", nil, `restore_tests[0].interval: must be greater than 0`},
		{"notifier type", "notifiers: [{name: n, type: pager, url: 'https://x'}]\n", nil, `notifiers[0].type: unknown notifier type "pager": want slack, email or webhook`},
		{"notifier url", "notifiers: [{name: n, type: slack}]\n", nil, `notifiers[0].url: url or bot_token is required`},
		{"webhook notifier url", "notifiers: [{name: n, type: webhook}]\n", nil, `notifiers[0].url: url is required`},
		{"notifier url hidden", "notifiers: [{name: n, type: slack, url: 'hooks.slack.com/services/T0/B0/SECRETPART'}]\n", nil, `notifiers[0].url: invalid URL (not shown)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := tt.yml
			if !strings.HasPrefix(yml, "auth:") {
				yml = webhookAuth + yml
			}
			known := knownExecHTTP()
			if tt.known != nil {
				known = *tt.known
			}
			ps := parseErr(t, yml, known)
			wantAll(t, ps.Error(), tt.want)
			if strings.Contains(ps.Error(), "SECRETPART") {
				t.Errorf("a notifier URL leaked into:\n%v", ps)
			}
		})
	}
}

func TestUndefinedProbeInPolicy(t *testing.T) {
	yml := webhookAuth + `probes: [{name: db-ready, type: postgres_ready}]
policies:
  - name: restart-db
    matchers: ['alertname="PostgresDown"']
    steps:
      - action: exec
        verify: {probe: db-ready}
      - action: exec
        verify: {probe: db-redy, within: 1m}
`
	ps := parseErr(t, yml, knownExecHTTP())
	if len(ps.Errors()) != 1 {
		t.Fatalf("want exactly one error, got:\n%v", ps)
	}
	got := ps.Errors()[0]
	want := Problem{File: "test.yaml", Line: 12, Path: "policies[0].steps[1].verify.probe", Message: `undefined probe "db-redy" in policy "restart-db"`, Severity: SeverityError}
	if got != want {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestWarnings(t *testing.T) {
	t.Setenv("TEST_DSN", "postgres://u:p@h/db")
	yml := webhookAuth + pgTargetsWithReplica + `probes:
  - {name: orphan, type: http}
  - {name: other, type: http, service: billing, scenario: x}
policies:
  - name: p
    matchers: ['alertname="X"']
    steps:
      - action: exec
        params: {argv: [echo, '{{ .Lables.target }}', '{{ range .Labels }}{{ .Foo }}{{ end }}', '{{ $.Run }}']}
        approval: {expires: 5m}
backups:
  - {name: b, target: db, destination: bucket, interval: 6h, key_file: /etc/hostname}
`
	c := mustParse(t, yml)
	wantAll(t, c.Warnings().Error(),
		`warning: test.yaml:3: auth.webhook.bearer_token: the secret is written in the configuration itself`,
		`probes[0]: probe "orphan" names no scenario`,
		`probes[0]: probe "orphan" has no service`,
		`probes[1].service: service "billing" has no objectives: add objectives.billing with rpo and rto`,
		`policies[0].steps[0].params.argv[1]: the template refers to .Lables, which is not one of .Labels, .Annotations, .Incident, .Target, .Run`,
		`policies[0].steps[0].approval.expires: has no effect: approval.required is not true`,
		`backups[0].interval: backups every 6h cannot meet RPO 1h on their own: service "svc" relies on replica db for it`,
		`backups[0].sse: destination "bucket" is unencrypted at rest`,
		`objectives.svc.recovery_sources[0].target: replica "db" has no postgres_replication probe`,
		`backups[0]: backup "b" is never restore-tested`,
	)
	if n := len(c.Warnings()); n != 10 {
		t.Errorf("got %d warnings, want 10:\n%v", n, c.Warnings())
	}
	for _, w := range c.Warnings() {
		if w.Severity != SeverityWarning {
			t.Errorf("Warnings() holds %v", w)
		}
	}
}

func TestWarningsAccompanyErrors(t *testing.T) {
	_, err := Parse([]byte(webhookAuth+"policies: [{name: p}]\n"), "test.yaml", knownExecHTTP())
	ps := err.(Problems)
	if len(ps.Warnings()) != 1 || len(ps.Errors()) != 2 {
		t.Errorf("want 2 errors and 1 warning, got:\n%v", ps)
	}
}

func TestUnknownActionListsKnownOnes(t *testing.T) {
	ps := parseErr(t, webhookAuth+`policies:
  - name: p
    matchers: ['alertname="X"']
    steps: [{action: exex}]
`, knownExecHTTP())
	wantAll(t, ps.Error(), `test.yaml:7: policies[0].steps[0].action: unknown action "exex" (known: exec, http)`)
}

func TestNilKnownAcceptsAnything(t *testing.T) {
	c, err := Parse([]byte(webhookAuth+`probes: [{name: a, type: anything}]
policies:
  - name: p
    matchers: ['alertname="X"']
    steps: [{action: kubernetes.scale, params: {replicas: 0}}]
`), "test.yaml", Known{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Policies[0].Steps[0].Action != "kubernetes.scale" {
		t.Errorf("action = %q", c.Policies[0].Steps[0].Action)
	}
}

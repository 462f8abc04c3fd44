package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestUnknownKeysNameFileAndLine(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{
			name: "top level",
			yml:  webhookAuth + minimalPolicy + "polcies: []\n",
			want: []string{`test.yaml:10: unknown key "polcies" in config (did you mean "policies"?)`},
		},
		{
			name: "nested in a list",
			yml: webhookAuth + `policies:
  - name: p
    mathcers: ['alertname="X"']
    matchers: ['alertname="X"']
    steps: [{action: exec}]
`,
			want: []string{`test.yaml:6: unknown key "mathcers" in policies[0] (did you mean "matchers"?)`},
		},
		{
			name: "deep, no suggestion",
			yml: webhookAuth + `policies:
  - name: p
    matchers: ['alertname="X"']
    steps:
      - action: exec
        verify: {probe: x, whatever: 1m}
`,
			want: []string{`test.yaml:9: unknown key "whatever" in policies[0].steps[0].verify`},
		},
		{
			name: "inside a map of structs",
			yml:  webhookAuth + minimalPolicy + "objectives:\n  svc:\n    rpo: 1h\n    rto: 4h\n    rtp: 1h\n",
			want: []string{`test.yaml:14: unknown key "rtp" in objectives.svc`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseErr(t, tt.yml, knownExecHTTP())
			wantAll(t, ps.Error(), tt.want...)
		})
	}
}

func TestSeveralProblemsReportedTogether(t *testing.T) {
	yml := `servr: {}
auth:
  webhook: {}
guardrails:
  step_timeout: 5 minutes
  approval_expiry: 30d
policies:
  - name: p
    matchers: ['alertname=~"("']
    steps:
      - action: exex
        on_failure: retry
  - name: p
    matchers: []
    steps: []
probes:
  - {name: a, type: http, interval: soon}
`
	ps := parseErr(t, yml, knownExecHTTP())
	wantAll(t, ps.Error(),
		`test.yaml:1: unknown key "servr" in config (did you mean "server"?)`,
		`test.yaml:3: auth.webhook: the webhook needs a credential`,
		`test.yaml:5: guardrails.step_timeout: invalid duration "5 minutes"`,
		`test.yaml:9: policies[0].matchers[0]: invalid matcher`,
		`test.yaml:11: policies[0].steps[0].action: unknown action "exex" (known: exec, http)`,
		`test.yaml:12: policies[0].steps[0].on_failure: unknown on_failure "retry"`,
		`test.yaml:13: policies[1].name: duplicate policy name "p" (first defined at line 8)`,
		`test.yaml:14: policies[1].matchers: at least one matcher is required`,
		`test.yaml:15: policies[1].steps: at least one step is required`,
		`test.yaml:17: probes[0].interval: invalid duration "soon"`,
	)
	if n := len(ps.Errors()); n != 10 {
		t.Errorf("got %d errors, want 10:\n%v", n, ps)
	}
	// Problems come in file order.
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line {
			t.Errorf("problems out of order: %v before %v", ps[i-1], ps[i])
		}
	}
}

func TestWrongShapes(t *testing.T) {
	tests := []struct {
		name, yml, want string
	}{
		{"list for mapping", "server: [a]\n", `test.yaml:1: server: expected a mapping of keys, not a list`},
		{"string for list", "policies: nope\n", `test.yaml:1: policies: expected a list, not a single value`},
		{"string for int", "server: {max_body_bytes: lots}\n", `test.yaml:1: server.max_body_bytes: expected a whole number, not "lots"`},
		{"string for bool", "guardrails: {dry_run: maybe}\n", `test.yaml:1: guardrails.dry_run: expected true or false, not "maybe"`},
		{"mapping for string", "storage: {path: {a: b}}\n", `test.yaml:1: storage.path: expected a string, not a mapping`},
		{"repeated key", "storage: {path: a}\nstorage: {path: b}\n", `test.yaml:2: storage: key "storage" is repeated (first on line 1)`},
		{"duration without unit", "server: {shutdown_timeout: 30}\n", `invalid duration "30": write a number and a unit`},
		{"negative duration", "policies: [{name: p, matchers: ['a=\"b\"'], cooldown: -1m, steps: [{action: exec}]}]\n", `policies[0].cooldown: invalid duration "-1m"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseErr(t, webhookAuthLast(tt.yml), knownExecHTTP())
			wantAll(t, ps.Error(), tt.want)
			// A blanked value must not be reported again by later checks.
			if n := len(ps.Errors()); n != 1 {
				t.Errorf("got %d errors, want 1:\n%v", n, ps)
			}
		})
	}
}

// webhookAuthLast appends the auth section so the case's lines stay at 1.
func webhookAuthLast(yml string) string { return yml + webhookAuth }

func TestNotADocument(t *testing.T) {
	tests := []struct {
		name, yml, want string
	}{
		{"empty", "", "test.yaml: the configuration is empty"},
		{"blank", "\n  \n", "test.yaml: the configuration is empty"},
		{"comments only", "# nothing\n", "test.yaml: the configuration is empty"},
		{"null", "~\n", "test.yaml: the configuration is empty"},
		{"scalar", "hello\n", "test.yaml:1: the configuration must be a mapping"},
		{"syntax", "server:\n  listen_address: [\n", "test.yaml:2: invalid YAML: did not find expected node content"},
		{"tab", "server:\n\tlisten_address: x\n", "test.yaml:2: invalid YAML: found character that cannot start any token"},
		{"two documents", webhookAuth + minimalPolicy + "---\nserver: {}\n", "test.yaml:10: a second YAML document starts here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseErr(t, tt.yml, knownExecHTTP())
			wantAll(t, ps.Error(), tt.want)
		})
	}
}

func TestLoadUnknownKeyNamesPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "local.yaml")
	if err := os.WriteFile(path, []byte(webhookAuth+minimalPolicy+"polcies: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, knownExecHTTP())
	if err == nil {
		t.Fatal("want an error")
	}
	wantAll(t, err.Error(), "\n"+path+`:10: unknown key "polcies" in config (did you mean "policies"?)`)
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path, Known{})
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %T %v", err, err)
	}
	wantAll(t, err.Error(), path+": the configuration file does not exist")
}

func TestLoadEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, Known{})
	wantAll(t, err.Error(), path+": the configuration is empty")
}

func TestPrometheusDurations(t *testing.T) {
	c := mustParse(t, webhookAuth+`policies:
  - name: p
    matchers: ['alertname="X"']
    cooldown: 30d
    max_runs: {count: 2, window: 1y}
    steps:
      - action: exec
        timeout: 1h30m
objectives:
  svc: {rpo: 1w, rto: 90m}
`)
	p := c.Policies[0]
	day := 24 * time.Hour
	checks := []struct {
		name      string
		got, want model.Duration
	}{
		{"cooldown", p.Cooldown, model.Duration(30 * day)},
		{"max_runs.window", p.MaxRuns.Window, model.Duration(365 * day)},
		{"step timeout", p.Steps[0].Timeout, model.Duration(90 * time.Minute)},
		{"rpo", c.Objectives["svc"].RPO, model.Duration(7 * day)},
		{"rto", c.Objectives["svc"].RTO, model.Duration(90 * time.Minute)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestYAMLAnchorsAndMerge(t *testing.T) {
	c := mustParse(t, webhookAuth+`policies:
  - name: p
    matchers: ['alertname="X"']
    steps:
      - &restart
        action: exec
        params: {argv: [echo, hi]}
        timeout: 1m
      - <<: *restart
        name: again
`)
	if got := c.Policies[0].Steps[1]; got.Name != "again" || got.Timeout != model.Duration(time.Minute) {
		t.Errorf("merged step = %+v", got)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "deploy/x.yaml", Line: 12, Path: "policies[0].steps[1].action", Message: `unknown action "exex"`, Severity: SeverityError},
			`deploy/x.yaml:12: policies[0].steps[1].action: unknown action "exex"`},
		{Problem{File: "x.yaml", Path: "a", Message: "m", Severity: SeverityError}, "x.yaml: a: m"},
		{Problem{File: "x.yaml", Line: 3, Message: "m", Severity: SeverityWarning}, "x.yaml:3: m"},
		{Problem{Line: 3, Path: "a", Message: "m"}, "line 3: a: m"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	ps := Problems{tests[0].p, tests[2].p}
	if got, want := ps.Error(), tests[0].want+"\nwarning: "+tests[2].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

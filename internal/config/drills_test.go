package config

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// drillBase is a configuration a drill can refer to: a service with
// objectives, a postgres target with a readiness and a heartbeat probe,
// and a policy for its database failures.
const drillBase = `targets:
  postgres: [{name: db, service: shop, dsn: "postgres://u@h/db"}, {name: replica, service: shop, dsn: "postgres://u@r/db"}]
objectives:
  shop: {rpo: 1h, rto: 4h}
probes:
  - {name: db-ready, type: postgres_ready, target: db, scenario: database_failure}
  - {name: replica-primary, type: postgres_ready, target: replica, scenario: region_failure, params: {role: primary}}
  - {name: heartbeat, type: postgres_heartbeat, target: db, scenario: database_failure}
  - {name: writer, type: postgres_ready, target: db, params: {write_check: true}}
policies:
  - name: db-failure
    matchers: ['scenario="database_failure"', 'service="shop"']
    steps: [{action: exec, params: {argv: [echo, restart]}}]
  - name: region-failure
    matchers: ['scenario="region_failure"', 'service="shop"']
    steps: [{action: exec, params: {argv: [echo, promote]}}]
  - name: dry
    matchers: ['scenario="x"', 'service="shop"']
    dry_run: true
    steps: [{action: exec, params: {argv: [echo]}}]
`

// TestDrillDefaults: a drill takes its scenario and objective from its
// policy's matchers, its timeout from the objective's RTO, its serving
// target from recovered_when's postgres target, its announcement from the
// schedule, and its injection steps the settings of policy steps.
func TestDrillDefaults(t *testing.T) {
	c := mustParse(t, webhookAuth+drillBase+`
drills:
  - name: q2
    policy: region-failure
    inject: {steps: [{action: exec, params: {argv: [pg_ctl, stop]}}]}
    recovered_when: replica-primary
    heartbeat: heartbeat
    schedule: {every: 90d}
  - name: tabletop
    policy: db-failure
    inject: {synthetic: true}
    recovered_when: db-ready
    schedule: {every: 10d}
`)
	q2, ok := c.Drill("q2")
	if !ok {
		t.Fatal("drill q2 not found")
	}
	if q2.Scenario != "region_failure" || q2.Objective != "shop" || q2.Timeout != model.Duration(4*time.Hour) || q2.ServingTarget != "replica" {
		t.Errorf("q2 defaults: scenario %q objective %q timeout %s serving %q", q2.Scenario, q2.Objective, q2.Timeout, q2.ServingTarget)
	}
	if q2.Schedule.Announce != DefaultDrillAnnounce {
		t.Errorf("q2 announce %s, want %s", q2.Schedule.Announce, DefaultDrillAnnounce)
	}
	st := q2.Inject.Steps[0]
	if st.Name != "exec-0" || st.Timeout != DefaultStepTimeout || st.OnFailure != OnFailureAbort {
		t.Errorf("injection step defaults: %+v", st)
	}
	tt, _ := c.Drill("tabletop")
	if got := tt.Inject.Labels; got["alertname"] != DrillAlertName || got["scenario"] != "database_failure" || got["service"] != "shop" {
		t.Errorf("synthetic labels %v", got)
	}
	if tt.Schedule.Announce != model.Duration(5*24*time.Hour) {
		t.Errorf("tabletop announce %s, want half of every (5d)", tt.Schedule.Announce)
	}
}

// TestDrillProblems: every mistake in a drill is reported at its line,
// with what to do.
func TestDrillProblems(t *testing.T) {
	tests := []struct {
		name, drill, want string
	}{
		{"no policy", "{name: d, inject: {synthetic: true}, recovered_when: db-ready, objective: shop, scenario: s}",
			`drills[0].policy: policy is required`},
		{"undefined policy", "{name: d, policy: nope, inject: {synthetic: true, labels: {a: b}}, recovered_when: db-ready, objective: shop, scenario: s}",
			`drills[0].policy: undefined policy "nope" in drill "d"`},
		{"undefined policy in list", "{name: d, policies: [db-failure, nope], inject: {synthetic: true}, recovered_when: db-ready}",
			`drills[0].policies: undefined policy "nope" in drill "d"`},
		{"dry-run policy", "{name: d, policy: dry, inject: {synthetic: true}, recovered_when: db-ready}",
			`policy "dry" of drill "d" is a dry run`},
		{"no recovered_when", "{name: d, policy: db-failure, inject: {synthetic: true}}",
			`drills[0].recovered_when: recovered_when is required`},
		{"undefined probe", "{name: d, policy: db-failure, inject: {synthetic: true}, recovered_when: nope}",
			`drills[0].recovered_when: undefined probe "nope" in drill "d"`},
		{"recovered_when writes", "{name: d, policy: db-failure, inject: {synthetic: true}, recovered_when: writer, heartbeat: heartbeat}",
			`probe "writer" writes the heartbeat (write_check)`},
		{"heartbeat kind", "{name: d, policy: db-failure, inject: {synthetic: true}, recovered_when: db-ready, heartbeat: db-ready}",
			`drills[0].heartbeat: probe "db-ready" of drill "d" is a postgres_ready probe, not postgres_heartbeat`},
		{"serving target", "{name: d, policy: db-failure, inject: {synthetic: true}, recovered_when: db-ready, serving_target: nope}",
			`drills[0].serving_target: undefined postgres target "nope" in drill "d"`},
		{"objective", "{name: d, policy: db-failure, inject: {synthetic: true}, recovered_when: db-ready, objective: bank}",
			`drills[0].objective: undefined objective "bank" in drill "d"`},
		{"no injection", "{name: d, policy: db-failure, recovered_when: db-ready}",
			`drills[0].inject: inject is required`},
		{"both injections", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {synthetic: true, steps: [{action: exec, params: {argv: [x]}}]}}",
			`drills[0].inject: set either steps (a real failure) or synthetic: true`},
		{"labels without synthetic", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {labels: {a: b}, steps: [{action: exec, params: {argv: [x]}}]}}",
			`drills[0].inject.labels: labels are the synthetic detection's`},
		{"synthetic matches nothing", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {synthetic: true, labels: {scenario: other}}}",
			`drills[0].inject.labels: the synthetic detection of drill "d"`},
		{"unknown action", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {steps: [{action: chaos}]}}",
			`drills[0].inject.steps[0].action: unknown action "chaos"`},
		{"gated injection", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {steps: [{action: exec, params: {argv: [x]}, approval: {required: true}}]}}",
			`drills[0].inject.steps[0].approval: an injection step takes no approval`},
		{"verified injection", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {steps: [{action: exec, params: {argv: [x]}, verify: {probe: db-ready}}]}}",
			`drills[0].inject.steps[0].verify: an injection step takes no verify`},
		{"announce", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {synthetic: true}, schedule: {every: 1d, announce: 2d}}",
			`drills[0].schedule.announce: announce 2d must be shorter than every 1d`},
		{"every", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {synthetic: true}, schedule: {announce: 2d}}",
			`drills[0].schedule.every: must be greater than 0`},
		{"steered injection", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {steps: [{action: http, params: {url: 'http://{{ .Labels.drill }}/x'}}]}}",
			`drills[0].inject.steps[0].params.url: the URL's scheme, host or port is a template`},
		{"unknown key", "{name: d, policy: db-failure, recovered_when: db-ready, inject: {synthetic: true}, injection: {}}",
			`unknown key "injection" in drills[0] (did you mean "inject"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yml := webhookAuth + drillBase + "drills:\n  - " + tc.drill + "\n"
			ps := parseErr(t, yml, knownExecHTTP())
			line := strings.Count(webhookAuth+drillBase, "\n") + 2
			for _, p := range ps.Errors() {
				if strings.Contains(p.String(), tc.want) {
					if p.Line != line || p.File != "test.yaml" {
						t.Errorf("%q reported at %s:%d, want test.yaml:%d", tc.want, p.File, p.Line, line)
					}
					return
				}
			}
			t.Errorf("want %q among:\n%v", tc.want, ps)
		})
	}
}

// TestDrillDuplicateAndWarning: drill names are unique, and auto_approve
// under four-eyes is a warning: the drill may not approve what it
// requested.
func TestDrillDuplicateAndWarning(t *testing.T) {
	one := "  - {name: d, policy: db-failure, inject: {synthetic: true}, recovered_when: db-ready, auto_approve: true}\n"
	ps := parseErr(t, webhookAuth+drillBase+"drills:\n"+one+one, knownExecHTTP())
	wantAll(t, ps.Error(), `drills[1].name: duplicate drill name "d"`)

	c := mustParse(t, webhookAuth+"  four_eyes: true\n"+drillBase+"drills:\n"+one)
	wantAll(t, c.Warnings().Error(), `drills[0].auto_approve: has no effect while auth.four_eyes is on`)

	ps = parseErr(t, webhookAuth+"  users: [{name: 'drill:q1', role: admin, token: t0123456789abcdef}]\n"+drillBase, knownExecHTTP())
	wantAll(t, ps.Error(), `auth.users[0].name: names starting with "drill:" are reserved for drills`)
}

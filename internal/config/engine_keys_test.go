package config

import (
	"strings"
	"testing"
)

// TestEngineKeys covers the keys the remediation engine reads: a policy's
// on_resolved, a step's approval.approvals, and the user name reserved for
// drguard's own actions.
func TestEngineKeys(t *testing.T) {
	gated := webhookAuth + `policies:
  - name: p
    matchers: ['alertname="X"']
    steps:
      - action: exec
        params: {argv: [echo, hi]}
        approval: {required: true}
`
	c := mustParse(t, gated)
	if p := c.Policies[0]; p.OnResolved != OnResolvedStop || p.Steps[0].Approval.Approvals != 1 {
		t.Errorf("defaults: on_resolved %q, approvals %d; want stop, 1", p.OnResolved, p.Steps[0].Approval.Approvals)
	}
	c = mustParse(t, webhookAuth+twoApprovers+`policies:
  - name: p
    matchers: ['alertname="X"']
    on_resolved: continue
    steps:
      - action: exec
        params: {argv: [echo, hi]}
        approval: {required: true, approvals: 2}
`)
	if p := c.Policies[0]; p.OnResolved != OnResolvedContinue || p.Steps[0].Approval.Approvals != 2 {
		t.Errorf("set: on_resolved %q, approvals %d; want continue, 2", p.OnResolved, p.Steps[0].Approval.Approvals)
	}
	tests := []struct{ name, yml, want string }{
		{"on_resolved", webhookAuth + "policies: [{name: p, matchers: ['a=\"b\"'], on_resolved: retry, steps: [{action: exec, params: {argv: [x]}}]}]\n",
			`policies[0].on_resolved: unknown on_resolved "retry": want stop or continue`},
		{"approvals", webhookAuth + "policies: [{name: p, matchers: ['a=\"b\"'], steps: [{action: exec, params: {argv: [x]}, approval: {required: true, approvals: -1}}]}]\n",
			`policies[0].steps[0].approval.approvals: must be at least 1`},
		{"reserved user", webhookAuth + "  users: [{name: drguard, role: approver, token: t}]\n",
			`auth.users[0].name: the name "drguard" is reserved for drguard's own actions`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantAll(t, parseErr(t, tc.yml, knownExecHTTP()).Error(), tc.want)
		})
	}
}

// twoApprovers is an auth.users section with one approver and one admin.
const twoApprovers = `  users:
    - {name: ann, role: approver, token: ann-token-0123456789}
    - {name: bob, role: admin, token: bob-token-0123456789}
`

// TestTooFewApproversWarn shows that check says when four-eyes leaves
// destructive gated steps no second approver, or a step needs more
// approvers than there are.
func TestTooFewApproversWarn(t *testing.T) {
	c := mustParse(t, `auth:
  webhook: {bearer_token: hook-token-0123456789}
  four_eyes: true
  users: [{name: ann, role: approver, token: ann-token-0123456789}, {name: vic, role: viewer, token: vic-token-0123456789}]
policies: [{name: p, matchers: ['a="b"'], steps: [{action: exec, params: {argv: [x]}, approval: {required: true}}]}]
`)
	wantWarning(t, c, "auth.four_eyes: four-eyes needs two different approvers")
	c = mustParse(t, webhookAuth+twoApprovers+`policies: [{name: p, matchers: ['a="b"'], steps: [{action: exec, params: {argv: [x]}, approval: {required: true, approvals: 3}}]}]
`)
	wantWarning(t, c, "policies[0].steps[0].approval.approvals: needs 3 different approvers but only 2 users have the approver or admin role")
}

func wantWarning(t *testing.T, c *Config, want string) {
	t.Helper()
	for _, w := range c.Warnings() {
		if strings.Contains(w.String(), want) {
			return
		}
	}
	t.Errorf("no warning %q in %v", want, c.Warnings())
}

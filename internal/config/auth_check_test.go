package config

import (
	"strings"
	"testing"
)

// TestCredentialChecks: short credentials are errors and a user sharing
// the webhook's credential is a warning, each at its file:line, and no
// message shows a secret.
func TestCredentialChecks(t *testing.T) {
	t.Setenv("SHORT_TOKEN", "short-15-bytes!")
	tests := []struct {
		name, auth string
		want       string
		warning    bool
	}{
		{"short webhook token", "  webhook: {bearer_token: tiny}\n",
			`test.yaml:2: auth.webhook.bearer_token: the credential of the webhook is 4 bytes long; use at least 16`, false},
		{"short token from the environment", "  webhook: {bearer_token: '${SHORT_TOKEN}'}\n",
			`test.yaml:2: auth.webhook.bearer_token: the credential of the webhook is 15 bytes long`, false},
		{"short basic-auth password", "  webhook: {basic_auth: {username: am, password: pw}}\n",
			`test.yaml:2: auth.webhook.basic_auth.password: the credential of the webhook is 2 bytes long`, false},
		{"short user token", "  webhook: {bearer_token: webhook-token-0123456}\n  users:\n    - {name: alice, role: admin, token: alice}\n",
			`test.yaml:4: auth.users[0].token: the credential of user "alice" is 5 bytes long`, false},
		{"webhook token shared with a user", "  webhook: {bearer_token: shared-token-0123456}\n  users:\n    - {name: alice, role: admin, token: shared-token-0123456}\n",
			`test.yaml:4: auth.users[0].token: user "alice" has the same credential as the webhook`, true},
		{"webhook password shared with a user", "  webhook: {basic_auth: {username: am, password: shared-token-0123456}}\n  users:\n    - {name: bob, role: viewer, token: shared-token-0123456}\n",
			`test.yaml:4: auth.users[0].token: user "bob" has the same credential as the webhook`, true},
		{"two users with one token", "  webhook: {bearer_token: webhook-token-0123456}\n  users:\n    - {name: a, role: admin, token: shared-token-0123456}\n    - {name: b, role: viewer, token: shared-token-0123456}\n",
			`test.yaml:5: auth.users[1].token: users "a" and "b" have the same token`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yml := "auth:\n" + tc.auth + minimalPolicy
			var text string
			if tc.warning {
				text = mustParse(t, yml).Warnings().Error()
			} else {
				text = parseErr(t, yml, knownExecHTTP()).Errors().Error()
			}
			wantAll(t, text, tc.want)
			for _, secret := range []string{"tiny", "short-15-bytes!", "shared-token-0123456", ": pw", "alice\n"} {
				if strings.Contains(text, secret) {
					t.Errorf("a message shows the secret %q:\n%s", secret, text)
				}
			}
		})
	}
	// A credential of exactly MinTokenBytes passes.
	mustParse(t, "auth:\n  webhook: {bearer_token: "+strings.Repeat("x", MinTokenBytes)+"}\n"+minimalPolicy)
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// slackUsers is an auth section whose users have Slack member IDs.
const slackUsers = `auth:
  webhook: {bearer_token: hook-token-0123456789}
  users:
    - {name: bob, role: approver, token: bob-token-0123456789, slack_user_id: U0BOB}
    - {name: carol, role: approver, token: carol-token-0123456789, slack_user_id: W0CAROL}
`

func TestSlackAppNotifierLoads(t *testing.T) {
	dir := t.TempDir()
	bot := filepath.Join(dir, "bot")
	if err := os.WriteFile(bot, []byte("xoxb-secret-bot-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLACK_SIGNING_SECRET", "signing-secret-0123456789")
	t.Setenv("SESSION_KEY", strings.Repeat("k", 32))
	c := mustParse(t, slackUsers+minimalPolicy+`server: {session_key: "${SESSION_KEY}"}
notifiers:
  - {name: incidents, type: slack, bot_token_file: `+bot+`, channel: C0INCIDENTS, signing_secret: "${SLACK_SIGNING_SECRET}"}
`)
	n := c.Notifiers[0]
	if !n.SlackApp() || n.BotToken.Reveal() != "xoxb-secret-bot-token" || n.SigningSecret.Reveal() != "signing-secret-0123456789" ||
		n.Channel != "C0INCIDENTS" || n.APIURL != DefaultSlackAPIURL {
		t.Errorf("notifier = %+v", n)
	}
	if c.Auth.Users[0].SlackUserID != "U0BOB" || c.Auth.Users[1].SlackUserID != "W0CAROL" {
		t.Errorf("users = %+v", c.Auth.Users)
	}
	if c.Server.SessionLifetime != model.Duration(12*time.Hour) || len(c.Server.SessionKey.Reveal()) != 32 {
		t.Errorf("server = %+v", c.Server)
	}
	if w := c.Warnings().Error(); strings.Contains(w, "slack") {
		t.Errorf("warnings about a complete Slack app: %s", w)
	}
}

func TestSlackAndSessionProblems(t *testing.T) {
	app := "{name: s, type: slack, bot_token: xoxb-0123456789abcdef, channel: C1, signing_secret: s-0123456789}"
	tests := []struct{ name, yml, want string }{
		{"channel required", "notifiers: [{name: s, type: slack, bot_token: xoxb-0123456789abcdef, signing_secret: s-0123456789}]\n",
			"notifiers[0].channel: channel is required with bot_token"},
		{"signing secret required", "notifiers: [{name: s, type: slack, bot_token: xoxb-0123456789abcdef, channel: C1}]\n",
			"notifiers[0].signing_secret: signing_secret (or signing_secret_file) is required with bot_token"},
		{"api url", "notifiers: [{name: s, type: slack, bot_token: xoxb-0123456789abcdef, channel: C1, signing_secret: s-0123456789, api_url: 'slack.com/api'}]\n",
			`notifiers[0].api_url: invalid URL "slack.com/api"`},
		{"slack keys elsewhere", "notifiers: [{name: w, type: webhook, url: 'https://x', bot_token: xoxb-0123456789abcdef, channel: C1}]\n",
			"notifiers[0].bot_token: bot_token is for slack notifiers; this one is of type webhook"},
		{"member id form", "auth:\n  webhook: {bearer_token: hook-token-0123456789}\n  users: [{name: bob, role: approver, token: bob-token-0123456789, slack_user_id: bob}]\nnotifiers: [" + app + "]\n",
			`auth.users[0].slack_user_id: "bob" is not a Slack member ID`},
		{"member id twice", "auth:\n  webhook: {bearer_token: hook-token-0123456789}\n  users:\n    - {name: bob, role: approver, token: bob-token-0123456789, slack_user_id: U1}\n    - {name: eve, role: admin, token: eve-token-0123456789, slack_user_id: U1}\nnotifiers: [" + app + "]\n",
			`users "bob" and "eve" have the same Slack member ID`},
		{"short session key", "server: {session_key: short}\n", "server.session_key: the session key is 5 bytes long; use at least 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := tt.yml
			if !strings.HasPrefix(yml, "auth:") {
				yml = webhookAuth + yml
			}
			ps := parseErr(t, yml+minimalPolicy, knownExecHTTP())
			wantAll(t, ps.Error(), tt.want)
			for _, secret := range []string{"xoxb-0123456789abcdef", "s-0123456789", "short"} {
				if strings.Contains(ps.Error(), secret) {
					t.Errorf("a secret leaked into:\n%v", ps)
				}
			}
		})
	}
}

func TestSlackWarnings(t *testing.T) {
	c := mustParse(t, slackUsers+minimalPolicy+"notifiers: [{name: s, type: slack, url: 'https://hooks.example/x', channel: C1}]\n")
	wantAll(t, c.Warnings().Error(),
		"notifiers[0].channel: has no effect without bot_token",
		"auth.users[0].slack_user_id: has no effect: no slack notifier has a bot_token")
}

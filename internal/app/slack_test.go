package app

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

const (
	slackBotToken      = "xoxb-test-bot-token-0123"
	slackSigningSecret = "test-signing-secret-0123"
)

// startSlackApp starts drguard with a Slack app notifier whose Web API is
// the fake, and bob and victor mapped to Slack members U0BOB and U0VICTOR.
func startSlackApp(t *testing.T, api *testharness.SlackAPI, policies string) *testApp {
	t.Helper()
	users := strings.NewReplacer(
		"{name: bob, role: approver, token: test-approver-token}", "{name: bob, role: approver, token: test-approver-token, slack_user_id: U0BOB}",
		"{name: victor, role: viewer, token: test-viewer-token}", "{name: victor, role: viewer, token: test-viewer-token, slack_user_id: U0VICTOR}",
		"server:\n", "server:\n  external_url: https://drguard.example\n",
	).Replace(baseConfig)
	cfgText := users + policies + `
notifiers:
  - name: incidents
    type: slack
    bot_token: ` + slackBotToken + `
    signing_secret: ` + slackSigningSecret + `
    channel: C0INCIDENTS
    api_url: ` + api.URL + `
    status_updates: false
`
	dir := t.TempDir()
	path := filepath.Join(dir, "drguard.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, KnownActions())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return startAppWith(t, cfg, filepath.Join(dir, "data"))
}

// press is the body of a press of a button of an approval message, as
// Slack sends it.
func press(user, actionID, value string) []byte {
	payload, _ := json.Marshal(map[string]any{
		"type":      "block_actions",
		"user":      map[string]string{"id": user, "username": strings.ToLower(user)},
		"team":      map[string]string{"id": "T0DRGUARD"},
		"channel":   map[string]string{"id": "C0INCIDENTS"},
		"container": map[string]string{"type": "message", "channel_id": "C0INCIDENTS", "message_ts": "1700000000.000001"},
		"actions":   []map[string]string{{"type": "button", "action_id": actionID, "block_id": "drguard_decide", "value": value}},
	})
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

// sendSigned posts body to the interactions endpoint with headers.
func sendSigned(t *testing.T, a *testApp, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/v1/slack/interactions", bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// buttons returns the values of the Approve and Reject buttons of a
// posted message's blocks.
func buttons(c testharness.SlackCall) map[string]string {
	out := map[string]string{}
	for _, b := range c.Blocks() {
		if b["type"] != "actions" {
			continue
		}
		for _, e := range b["elements"].([]any) {
			el := e.(map[string]any)
			if v, ok := el["value"].(string); ok {
				out[el["action_id"].(string)] = v
			}
		}
	}
	return out
}

// TestSlackApprovals: the approval request reaches Slack's Web API as a
// message with the step's facts and Approve and Reject buttons; a bad
// signature, a stale timestamp, an unmapped Slack user and a viewer change
// nothing; a correctly signed press approves the step, which runs once; a
// replay of it is refused; the message is updated to show who approved.
func TestSlackApprovals(t *testing.T) {
	api := testharness.NewSlackAPI(t, slackBotToken)
	out := t.TempDir()
	a := startSlackApp(t, api, countingPolicy(out, true))
	post(t, a, webhook("firing", time.Now().Add(-time.Minute).UTC(), dbDown("pg-slack")))
	ap := pendingFor(t, a, "pg-slack")

	testharness.Eventually(t, 10*time.Second, "the approval message posted", func() bool { return len(api.Calls("chat.postMessage")) == 1 })
	msg := api.Calls("chat.postMessage")[0]
	if ch := msg.Form.Get("channel"); ch != "C0INCIDENTS" {
		t.Errorf("posted to %q", ch)
	}
	value := ap.ID + "|" + ap.ParamsHash
	if b := buttons(msg); b["drguard_approve"] != value || b["drguard_reject"] != value {
		t.Fatalf("buttons %v; want approve and reject carrying %q", b, value)
	}
	blocks := msg.Form.Get("blocks")
	for _, fact := range []string{"restart (exec) on pg-slack", "DemoDatabaseDown on pg-slack", "https://drguard.example/incidents/" + ap.IncidentID, "https://drguard.example/approvals#" + ap.ID, "1 more approval needed"} {
		if !strings.Contains(blocks, fact) {
			t.Errorf("the message lacks %q:\n%s", fact, blocks)
		}
	}

	now := time.Now()
	good := press("U0BOB", "drguard_approve", value)
	refused := []struct {
		name    string
		body    []byte
		headers map[string]string
		code    int
	}{
		{"bad signature", good, testharness.SlackSignature("not-the-secret", now, good), http.StatusUnauthorized},
		{"stale timestamp", good, testharness.SlackSignature(slackSigningSecret, now.Add(-6*time.Minute), good), http.StatusUnauthorized},
		{"no signature", good, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnauthorized},
		{"unmapped user", press("U0NOBODY", "drguard_approve", value), testharness.SlackSignature(slackSigningSecret, now, press("U0NOBODY", "drguard_approve", value)), http.StatusOK},
		{"viewer", press("U0VICTOR", "drguard_approve", value), testharness.SlackSignature(slackSigningSecret, now, press("U0VICTOR", "drguard_approve", value)), http.StatusOK},
	}
	for _, c := range refused {
		if code, body := sendSigned(t, a, c.body, c.headers); code != c.code {
			t.Errorf("%s: %d %s; want %d", c.name, code, body, c.code)
		}
	}
	testharness.Eventually(t, 10*time.Second, "two ephemeral replies", func() bool { return len(api.Calls("chat.postEphemeral")) == 2 })
	for _, c := range api.Calls("chat.postEphemeral") {
		user, text := c.Form.Get("user"), c.Form.Get("text")
		if (user == "U0NOBODY" && !strings.Contains(text, "not mapped")) || (user == "U0VICTOR" && !strings.Contains(text, "may not decide")) {
			t.Errorf("ephemeral reply to %s: %q", user, text)
		}
	}
	if now := pendingFor(t, a, "pg-slack"); len(now.Votes) != 0 || executions(t, out) != 0 {
		t.Fatalf("a refused press changed something: votes %v, %d executions", now.Votes, executions(t, out))
	}

	headers := testharness.SlackSignature(slackSigningSecret, time.Now(), good)
	if code, body := sendSigned(t, a, good, headers); code != http.StatusOK {
		t.Fatalf("signed press: %d %s", code, body)
	}
	testharness.Eventually(t, 10*time.Second, "the approved step ran", func() bool { return executions(t, out) == 1 })
	if code, body := sendSigned(t, a, good, headers); code != http.StatusUnauthorized || !strings.Contains(body, "replayed") {
		t.Errorf("replayed press: %d %s; want 401", code, body)
	}
	testharness.Eventually(t, 10*time.Second, "the message updated with who approved", func() bool {
		for _, c := range api.Calls("chat.update") {
			if c.Form.Get("ts") == "1700000000.000001" && c.Form.Get("channel") == "C0INCIDENTS" && strings.Contains(c.Form.Get("blocks"), "Approved* by bob") {
				return len(buttons(c)) == 0
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond)
	if n := executions(t, out); n != 1 {
		t.Errorf("%d executions after the replay; want 1", n)
	}
	for result, want := range map[string]float64{"invalid": 4, "refused": 2, "decided": 1} {
		if got := metric(t, a.Registry, "drguard_slack_interactions_total", "result", result); got != want {
			t.Errorf("slack_interactions_total{result=%s} = %v, want %v", result, got, want)
		}
	}
}

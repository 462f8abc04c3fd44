package slackbot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// TestMessageFor: labels and parameters are data in Slack too (no
// mentions, no links of their own); a pending approval has both buttons
// bound to its hash, a decided one none and says who decided.
func TestMessageFor(t *testing.T) {
	a := store.Approval{ID: "apr-000007", RunID: "run-000003", IncidentID: "inc-000002", Step: "restore", Action: "postgres.restore",
		Target: "<!channel> pg", Why: "DB <down> & out", DataAtRisk: "writes since 03:00", Params: map[string]any{"backup": "latest", "into": "<@U1>"},
		ParamsHash: "0123456789abcdef0123", State: store.ApprovalPending, RequestedBy: "drguard", Required: 2,
		Votes: []store.Vote{{Actor: "carol"}}, ExpiresAt: time.Unix(1700003600, 0)}
	_, blocks := messageFor(a, "https://drguard.example")
	text := asJSON(blocks)
	for _, bad := range []string{"<!channel>", "<@U1>", "<down>"} {
		if strings.Contains(text, bad) {
			t.Errorf("%q reached Slack unescaped: %s", bad, text)
		}
	}
	for _, want := range []string{`"action_id":"drguard_approve","value":"apr-000007|0123456789abcdef0123"`, `"action_id":"drguard_reject"`,
		"Approved so far by carol; 1 more approval needed", "<!date^1700003600^", "https://drguard.example/approvals#apr-000007"} {
		if !strings.Contains(text, want) {
			t.Errorf("want %s in %s", want, text)
		}
	}
	a.State, a.Votes, a.DecidedBy, a.DecidedAt = store.ApprovalApproved, append(a.Votes, store.Vote{Actor: "bob"}), "bob", time.Unix(1700000100, 0)
	fallback, blocks := messageFor(a, "")
	if raw := asJSON(blocks); strings.Contains(raw, "drguard_approve") || !strings.Contains(raw, "*Approved* by carol, bob") || !strings.Contains(fallback, "Approval approved") {
		t.Errorf("decided message: %s / %s", fallback, raw)
	}
	if shown(a) == shown(store.Approval{State: store.ApprovalPending}) {
		t.Error("shown does not tell states apart")
	}
}

// asJSON is blocks as Slack receives them, without Go's HTML escaping.
func asJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return b.String()
}

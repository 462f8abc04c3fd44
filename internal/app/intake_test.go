package app

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

const noPolicies = ``

// TestIntakeRefusalsWriteNothing checks that every refused webhook gets
// its status code and leaves the journal untouched.
func TestIntakeRefusalsWriteNothing(t *testing.T) {
	a := startApp(t, noPolicies)
	good := webhook("firing", time.Now(), map[string]string{"alertname": "X", "fp": "f1"})
	huge := webhook("firing", time.Now(), map[string]string{"alertname": "X", "fp": "f1", "pad": strings.Repeat("x", 70000)})
	cases := []struct {
		name   string
		auth   func(*http.Request)
		body   []byte
		status int
		reason string
	}{
		{"no credentials", func(*http.Request) {}, good, 401, "unauthorized"},
		{"wrong bearer", bearerAuth("nope"), good, 401, "unauthorized"},
		{"admin token is not the webhook token", bearerAuth(adminToken), good, 401, "unauthorized"},
		{"wrong basic password", basicAuth("alertmanager", "nope"), good, 401, "unauthorized"},
		{"malformed JSON", bearerAuth(webhookToken), []byte(`{"version":"4","alerts":[`), 400, "malformed"},
		{"unknown version", bearerAuth(webhookToken), bytes.Replace(good, []byte(`"version":"4"`), []byte(`"version":"5"`), 1), 400, "malformed"},
		{"over the body limit", bearerAuth(webhookToken), huge, 413, "too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := metric(t, a.Registry, "drguard_alerts_received_total", "status", c.reason)
			req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/v1/alerts", bytes.NewReader(c.body))
			c.auth(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if got := metric(t, a.Registry, "drguard_alerts_received_total", "status", c.reason); got != before+1 {
				t.Errorf("alerts_received_total{status=%q} = %v, want %v", c.reason, got, before+1)
			}
		})
	}
	var list struct{ Incidents []json.RawMessage }
	getJSON(t, a.URL+"/api/v1/incidents", &list)
	if len(list.Incidents) != 0 {
		t.Fatalf("refused webhooks left %d incidents in the journal", len(list.Incidents))
	}
	if n, err := a.store.PendingAlerts(0); err != nil || len(n) != 0 {
		t.Fatalf("refused webhooks left %d alerts in the outbox (err %v)", len(n), err)
	}
}

// TestIntakeAcceptsBasicAuthAndJournals checks both credential styles
// Alertmanager's http_config can send.
func TestIntakeAcceptsBasicAuthAndJournals(t *testing.T) {
	a := startApp(t, noPolicies)
	for i, auth := range []func(*http.Request){bearerAuth(webhookToken), basicAuth("alertmanager", "test-basic-password")} {
		body := webhook("firing", time.Now(), map[string]string{"alertname": "X", "fp": "f" + string(rune('a'+i))})
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/v1/alerts", bytes.NewReader(body))
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("credential style %d: status %d", i, resp.StatusCode)
		}
	}
	testharness.Eventually(t, 5*time.Second, "two incidents", func() bool {
		var list struct{ Incidents []json.RawMessage }
		getJSON(t, a.URL+"/api/v1/incidents", &list)
		return len(list.Incidents) == 2
	})
	if got := metric(t, a.Registry, "drguard_alerts_received_total", "status", "firing"); got != 2 {
		t.Errorf("alerts_received_total{status=firing} = %v, want 2", got)
	}
}

// TestIntakeAnswers503WhenJournalCannotCommit checks that Alertmanager is
// told to retry when nothing can be persisted, and that readiness says so.
func TestIntakeAnswers503WhenJournalCannotCommit(t *testing.T) {
	a := startApp(t, noPolicies)
	if code, _ := do(t, http.MethodGet, a.URL+"/readyz", "", nil); code != 200 {
		t.Fatalf("readyz before failure: %d", code)
	}
	if err := a.store.Close(); err != nil {
		t.Fatal(err)
	}
	code, _ := do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", time.Now(), map[string]string{"alertname": "X", "fp": "f1"}))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status %d with a closed journal, want 503", code)
	}
	if code, body := do(t, http.MethodGet, a.URL+"/readyz", "", nil); code != 503 || !strings.Contains(string(body), "closed") {
		t.Fatalf("readyz with a closed journal: %d %s", code, body)
	}
	if code, _ := do(t, http.MethodGet, a.URL+"/healthz", "", nil); code != 200 {
		t.Fatalf("healthz must stay 200 (liveness): %d", code)
	}
	if got := metric(t, a.Registry, "drguard_alerts_received_total", "status", "unavailable"); got != 1 {
		t.Errorf("alerts_received_total{status=unavailable} = %v, want 1", got)
	}
}

// TestAPIRoles checks who may do what.
func TestAPIRoles(t *testing.T) {
	a := startApp(t, noPolicies)
	cases := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v1/incidents", "", 401},
		{"GET", "/api/v1/incidents", "wrong", 401},
		{"GET", "/api/v1/incidents", viewerToken, 200},
		{"GET", "/remediate", viewerToken, 200},
		{"GET", "/api/v1/incidents/inc-999999", viewerToken, 404},
		{"POST", "/remediate/apr-000001/approve", viewerToken, 403},
		{"POST", "/remediate/apr-000001/approve", approverToken, 404},
		{"POST", "/api/v1/pause", approverToken, 403},
		{"POST", "/api/v1/pause", webhookToken, 401},
		{"POST", "/api/v1/pause", adminToken, 200},
		{"POST", "/api/v1/resume", adminToken, 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
	}
	for _, c := range cases {
		if code, body := do(t, c.method, a.URL+c.path, c.token, nil); code != c.want {
			t.Errorf("%s %s with %q: %d, want %d (%s)", c.method, c.path, c.token, code, c.want, body)
		}
	}
}

// TestPauseSetsMetric checks the kill switch's gauge.
func TestPauseSetsMetric(t *testing.T) {
	a := startApp(t, noPolicies)
	do(t, http.MethodPost, a.URL+"/api/v1/pause", adminToken, nil)
	if got := metric(t, a.Registry, "drguard_remediation_paused"); got != 1 {
		t.Fatalf("remediation_paused = %v after pause", got)
	}
	do(t, http.MethodPost, a.URL+"/api/v1/resume", adminToken, nil)
	if got := metric(t, a.Registry, "drguard_remediation_paused"); got != 0 {
		t.Fatalf("remediation_paused = %v after resume", got)
	}
}

func bearerAuth(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func basicAuth(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

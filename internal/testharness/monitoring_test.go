package testharness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// webhookCall is one notification received by a test webhook.
type webhookCall struct {
	Auth string
	Body struct {
		Status string `json:"status"`
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
}

func newWebhook(t *testing.T) (*httptest.Server, chan webhookCall) {
	calls := make(chan webhookCall, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c webhookCall
		c.Auth = r.Header.Get("Authorization")
		if err := json.NewDecoder(r.Body).Decode(&c.Body); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		calls <- c
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

func nextCall(t *testing.T, calls chan webhookCall, within time.Duration) webhookCall {
	t.Helper()
	select {
	case c := <-calls:
		return c
	case <-time.After(within):
		t.Fatalf("no webhook call within %s", within)
		return webhookCall{}
	}
}

func TestAlertmanager(t *testing.T) {
	hook, calls := newWebhook(t)
	start := time.Now()
	am := Alertmanager(t, hook.URL, "s3cret", AMGroupInterval(time.Second))
	t.Logf("alertmanager ready in %s", time.Since(start))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	alerts := []Alert{{Labels: map[string]string{"alertname": "PostgresDown", "service": "db"},
		Annotations: map[string]string{"summary": "down"}}}
	posted := time.Now()
	if err := am.PostAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	c := nextCall(t, calls, 10*time.Second)
	t.Logf("firing notification after %s", time.Since(posted))
	if c.Auth != "Bearer s3cret" {
		t.Errorf("Authorization = %q, want Bearer s3cret", c.Auth)
	}
	if c.Body.Status != "firing" || len(c.Body.Alerts) != 1 || c.Body.Alerts[0].Labels["alertname"] != "PostgresDown" {
		t.Fatalf("firing notification = %+v", c.Body)
	}
	if held, err := am.Alerts(ctx); err != nil || len(held) != 1 || held[0].Fingerprint == "" {
		t.Fatalf("Alerts() = %+v, %v", held, err)
	}

	if err := am.ResolveAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	c = nextCall(t, calls, 10*time.Second)
	if c.Body.Status != "resolved" {
		t.Fatalf("after ResolveAlerts: notification status %q", c.Body.Status)
	}
}

func TestAlertmanagerRepeats(t *testing.T) {
	hook, calls := newWebhook(t)
	am := Alertmanager(t, hook.URL, "", AMGroupInterval(time.Second), AMRepeatInterval(time.Second))
	ctx := context.Background()
	if err := am.PostAlerts(ctx, []Alert{{Labels: map[string]string{"alertname": "Repeat"}}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if c := nextCall(t, calls, 10*time.Second); c.Auth != "" || c.Body.Status != "firing" {
			t.Fatalf("call %d = %+v", i, c)
		}
	}
}

func TestPrometheus(t *testing.T) {
	// An always-firing rule given as content, scraped target: Prometheus itself.
	rules := `groups:
- name: test
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
`
	start := time.Now()
	prom := Prometheus(t, "", rules)
	t.Logf("prometheus ready in %s", time.Since(start))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := prom.Query(ctx, "1 + 1")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := res.Samples()
	if err != nil || len(samples) != 1 || samples[0].Value != 2 {
		t.Fatalf("1 + 1 = %+v (%s), %v", samples, res.ResultType, err)
	}
	if _, err := prom.Query(ctx, "sum(("); err == nil {
		t.Fatal("a malformed query did not fail")
	}
	a, err := prom.WaitForAlert(ctx, "AlwaysFiring")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("alert firing after %s", time.Since(start))
	if a.Labels["alertname"] != "AlwaysFiring" || a.State != "firing" {
		t.Fatalf("WaitForAlert = %+v", a)
	}
	if err := prom.Reload(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPrometheusScrape(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "drguard_test_value 42")
	}))
	defer target.Close()
	config := fmt.Sprintf("scrape_configs:\n- job_name: t\n  static_configs:\n  - targets: [%q]\n", target.Listener.Addr().String())
	start := time.Now()
	prom := Prometheus(t, config)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		res, err := prom.Query(ctx, `drguard_test_value{job="t"}`)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := res.Samples(); len(s) == 1 && s[0].Value == 42 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("target never scraped")
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("first scraped sample after %s", time.Since(start))
}

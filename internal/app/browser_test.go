package app

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCrossSiteRequestsRefused: every state-changing endpoint refuses,
// with 403 and whatever the credentials, a request a browser marks as
// coming from elsewhere, and lets through the same-origin and non-browser
// requests. Nothing a refused request asked for happens.
func TestCrossSiteRequestsRefused(t *testing.T) {
	a := startApp(t, noPolicies)
	host := a.Addr()
	alert := webhook("firing", time.Now(), map[string]string{"alertname": "X", "fp": "cross"})
	endpoints := []struct {
		path, token string
		body        []byte
		allowed     int // status when the request is let through
	}{
		{"/api/v1/alerts", webhookToken, alert, 200},
		{"/api/v1/pause", adminToken, nil, 200},
		{"/api/v1/resume", adminToken, nil, 200},
		{"/remediate/apr-000001/approve", adminToken, nil, 404},
		{"/remediate/apr-000001/reject", adminToken, nil, 404},
	}
	refused := []struct {
		name    string
		headers map[string]string
	}{
		{"Origin null (sandboxed frame)", map[string]string{"Origin": "null"}},
		{"another site's Origin", map[string]string{"Origin": "https://evil.example"}},
		{"same host, other port", map[string]string{"Origin": "http://127.0.0.1:1"}},
		{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"Sec-Fetch-Site same-site", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"cross-site even with a matching Origin", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://" + host}},
	}
	allowed := []struct {
		name    string
		headers map[string]string
	}{
		{"no browser headers (Alertmanager, CLI)", nil},
		{"same origin", map[string]string{"Origin": "http://" + host}},
		{"Sec-Fetch-Site same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + host}},
	}
	send := func(t *testing.T, path, token string, body []byte, headers map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, a.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, e := range endpoints {
		for _, c := range refused {
			t.Run(e.path+"/"+c.name, func(t *testing.T) {
				if code := send(t, e.path, e.token, e.body, c.headers); code != http.StatusForbidden {
					t.Fatalf("%d, want 403", code)
				}
			})
		}
	}
	if got := metric(t, a.Registry, "drguard_remediation_paused"); got != 0 {
		t.Fatal("a refused cross-site pause paused remediation")
	}
	var list struct{ Incidents []any }
	getJSON(t, a.URL+"/api/v1/incidents", &list)
	if len(list.Incidents) != 0 {
		t.Fatalf("a refused cross-site webhook made %d incidents", len(list.Incidents))
	}
	if got, want := metric(t, a.Registry, "drguard_auth_failures_total", "endpoint", "/api/v1/pause", "reason", "cross_origin"), float64(len(refused)); got != want {
		t.Errorf("auth_failures_total{endpoint=/api/v1/pause,reason=cross_origin} = %v, want %v", got, want)
	}
	for _, e := range endpoints {
		for _, c := range allowed {
			t.Run(e.path+"/"+c.name, func(t *testing.T) {
				if code := send(t, e.path, e.token, e.body, c.headers); code != e.allowed {
					t.Fatalf("%d, want %d", code, e.allowed)
				}
			})
		}
	}
	// Reading is not state-changing: a cross-site GET is answered (the
	// browser's same-origin policy keeps the answer from the other site).
	req, _ := http.NewRequest(http.MethodGet, a.URL+"/api/v1/incidents", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("cross-site GET: %d, want 200", resp.StatusCode)
	}
}

// TestHTMLResponsesCarrySecurityHeaders: the approvals page (and every
// other response) forbids framing, inline script, referrers and sniffing.
func TestHTMLResponsesCarrySecurityHeaders(t *testing.T) {
	a := startApp(t, noPolicies)
	req, _ := http.NewRequest(http.MethodGet, a.URL+"/remediate", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET /remediate as a browser: %d %s", resp.StatusCode, ct)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	csp := map[string]string{}
	for _, d := range strings.Split(resp.Header.Get("Content-Security-Policy"), ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		csp[name] = value
	}
	if csp["default-src"] != "'none'" || csp["script-src"] != "'self'" || csp["style-src"] != "'self'" || csp["frame-ancestors"] != "'none'" || csp["form-action"] != "'self'" {
		t.Errorf("Content-Security-Policy is not strict: %q", resp.Header.Get("Content-Security-Policy"))
	}
	// The 401 a browser sees first carries them too.
	code, _ := do(t, http.MethodGet, a.URL+"/remediate", "", nil)
	resp2, err := http.Get(a.URL + "/remediate")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if code != 401 || resp2.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("unauthenticated /remediate: %d, X-Frame-Options %q", code, resp2.Header.Get("X-Frame-Options"))
	}
}

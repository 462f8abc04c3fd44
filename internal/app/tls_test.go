package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// writeWebConfig writes an exporter-toolkit web configuration file.
func writeWebConfig(t *testing.T, yml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "web-config.yml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsWebConfig serves with the PKI's server certificate; clientAuth is
// exporter-toolkit's client_auth_type ("" for none).
func tlsWebConfig(p *testharness.PKI, clientAuth string) string {
	yml := "tls_server_config:\n  cert_file: " + p.ServerCert + "\n  key_file: " + p.ServerKey + "\n"
	if clientAuth != "" {
		yml += "  client_auth_type: " + clientAuth + "\n  client_ca_file: " + p.CAFile + "\n"
	}
	return yml
}

func withWebConfig(path string) func(*Options) {
	return func(o *Options) { o.WebConfigFile = path }
}

// tlsClient trusts the PKI's CA and speaks HTTP/2 when the server offers it.
func tlsClient(p *testharness.PKI, withCert bool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: p.ClientConfig(withCert), ForceAttemptHTTP2: true}}
}

// TestWebConfigServesHTTPSOnly: with tls_server_config drguard answers
// HTTPS (HTTP/2 by default) and refuses plain HTTP on the same port.
func TestWebConfigServesHTTPSOnly(t *testing.T) {
	p := testharness.NewPKI(t)
	a := startApp(t, noPolicies, withWebConfig(writeWebConfig(t, tlsWebConfig(p, ""))))
	resp, err := tlsClient(p, false).Get("https://" + a.Addr() + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Errorf("HTTPS /healthz: %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	code, body, err := testharness.Send(http.MethodGet, "http://"+a.Addr()+"/api/v1/incidents", adminToken, nil)
	if err == nil && code != http.StatusBadRequest {
		t.Errorf("plain HTTP with a token: %d %s, want a refusal", code, body)
	}
	if err == nil && bytes.Contains(body, []byte("incidents")) {
		t.Errorf("plain HTTP was served: %s", body)
	}
}

// TestWebConfigRequiresClientCertificate: with
// RequireAndVerifyClientCert, a client without a certificate cannot even
// complete the handshake; one with a certificate from the CA is served.
func TestWebConfigRequiresClientCertificate(t *testing.T) {
	p := testharness.NewPKI(t)
	a := startApp(t, noPolicies, withWebConfig(writeWebConfig(t, tlsWebConfig(p, "RequireAndVerifyClientCert"))))
	url := "https://" + a.Addr() + "/healthz"
	if resp, err := tlsClient(p, false).Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("without a client certificate: %d, want a handshake failure", resp.StatusCode)
	}
	resp, err := tlsClient(p, true).Get(url)
	if err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with a client certificate: %d", resp.StatusCode)
	}
}

// TestWebConfigBasicAuthAndRolesBothApply: the web configuration's bcrypt
// users guard every path, /metrics included, and drguard's roles still
// apply behind them: a request must pass both.
func TestWebConfigBasicAuthAndRolesBothApply(t *testing.T) {
	hashed := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	cfg := "basic_auth_users:\n  alice: " + hashed(adminToken) + "\n  victor: " + hashed(viewerToken) + "\n  mallory: " + hashed("mallory-password-123") + "\n"
	a := startApp(t, noPolicies, withWebConfig(writeWebConfig(t, cfg)))
	cases := []struct {
		name, method, path, user, pass string
		want                           int
	}{
		{"metrics without credentials", "GET", "/metrics", "", "", 401},
		{"metrics as a web user", "GET", "/metrics", "victor", viewerToken, 200},
		{"web user who is no drguard user", "GET", "/api/v1/incidents", "mallory", "mallory-password-123", 401},
		{"viewer reads", "GET", "/api/v1/incidents", "victor", viewerToken, 200},
		{"viewer may not pause", "POST", "/api/v1/pause", "victor", viewerToken, 403},
		{"admin pauses", "POST", "/api/v1/pause", "alice", adminToken, 200},
		{"wrong password", "GET", "/api/v1/incidents", "alice", "not-the-password", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, a.URL+c.path, nil)
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("%d, want %d", resp.StatusCode, c.want)
			}
		})
	}
	// A bearer token alone does not pass the web configuration's users.
	if code, _ := do(t, http.MethodGet, a.URL+"/api/v1/incidents", adminToken, nil); code != 401 {
		t.Errorf("bearer token without the web user: %d, want 401", code)
	}
}

// TestRealAlertmanagerDeliversOverTLS: a real Alertmanager whose webhook
// has tls_config (the test CA, and a client certificate, which drguard
// requires) delivers a firing alert to drguard over HTTPS.
func TestRealAlertmanagerDeliversOverTLS(t *testing.T) {
	p := testharness.NewPKI(t)
	a := startApp(t, noPolicies, withWebConfig(writeWebConfig(t, tlsWebConfig(p, "RequireAndVerifyClientCert"))))
	am := testharness.Alertmanager(t, "https://"+a.Addr()+"/api/v1/alerts", webhookToken,
		testharness.AMTLS(p.CAFile, p.ClientCert, p.ClientKey))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alert := testharness.Alert{Labels: map[string]string{"alertname": "OverTLS", "service": "demo", "target": "pg-tls"}, StartsAt: time.Now().UTC()}
	if err := am.PostAlerts(ctx, []testharness.Alert{alert}); err != nil {
		t.Fatal(err)
	}
	client := tlsClient(p, true)
	testharness.Eventually(t, 20*time.Second, "the alert to arrive over TLS", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "https://"+a.Addr()+"/api/v1/incidents", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Incidents []struct{ Labels map[string]string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		return len(list.Incidents) == 1 && list.Incidents[0].Labels["target"] == "pg-tls"
	})
	if got := metric(t, a.Registry, "drguard_alerts_received_total", "status", "firing"); got < 1 {
		t.Errorf("alerts_received_total{status=firing} = %v", got)
	}
}

// TestWebConfigValidatedAtStart: check and serve refuse a web
// configuration that cannot work, naming the file and the problem.
func TestWebConfigValidatedAtStart(t *testing.T) {
	p := testharness.NewPKI(t)
	cfgPath := filepath.Join(t.TempDir(), "drguard.yaml")
	if err := os.WriteFile(cfgPath, []byte(baseConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, yml, want string }{
		{"missing key file", "tls_server_config:\n  cert_file: " + p.ServerCert + "\n  key_file: /nonexistent/server.key\n", "/nonexistent/server.key"},
		{"unknown key", "tls_server_config:\n  cert_file: " + p.ServerCert + "\n  key_file: " + p.ServerKey + "\n  client_auth: x\n", "client_auth"},
		{"plain-text password", "basic_auth_users:\n  alice: not-a-bcrypt-hash\n", "bcrypt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			web := writeWebConfig(t, c.yml)
			for _, cmd := range []string{"check", "serve"} {
				var stdout, stderr strings.Builder
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				args := []string{cmd, "--config.file=" + cfgPath, "--web.config.file=" + web}
				if cmd == "serve" {
					args = append(args, "--web.listen-address=127.0.0.1:0", "--storage.path="+t.TempDir())
				}
				code := Main(ctx, args, IO{Stdout: &stdout, Stderr: &stderr})
				cancel()
				if code != ExitFail {
					t.Errorf("%s: exit %d, want %d", cmd, code, ExitFail)
				}
				if out := stderr.String(); !strings.Contains(out, web) || !strings.Contains(out, c.want) {
					t.Errorf("%s: stderr does not name the file and %q:\n%s", cmd, c.want, out)
				}
			}
		})
	}
}

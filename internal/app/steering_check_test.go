package app

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestCheckRefusesStepsThatLabelsCanSteer is the acceptance of the
// steering checks as `drguard check` runs them: a template in a URL's
// scheme, host or port, in a file path, in exec's argv[0] or in a header
// name makes check exit 1 with an error at the file, line and field; with
// an allow-list (allowed_hosts, allowed_commands) the same step passes.
func TestCheckRefusesStepsThatLabelsCanSteer(t *testing.T) {
	tests := []struct {
		name   string
		action string
		params string
		field  string // "" = check passes
		want   string
		marker string // the start of the line the error is on; "" = not checked
	}{
		{"url host from a label", "http", `url: "http://{{ .Labels.host }}/x"`, "params.url", "scheme, host or port is a template", "url:"},
		{"whole url from a label", "http", `url: "{{ .Labels.url }}"`, "params.url", "scheme, host or port is a template", "url:"},
		{"url port from a label", "http", `url: "http://127.0.0.1:{{ .Labels.port }}/x"`, "params.url", "scheme, host or port is a template", "url:"},
		{"url scheme from a label", "http", `url: "{{ .Labels.scheme }}://hooks.example/x"`, "params.url", "scheme, host or port is a template", "url:"},
		{"url path from a label", "http", `url: "https://hooks.example/x/{{ .Labels.target }}"`, "", "", ""},
		{"url host with allowed_hosts", "http", "url: \"https://{{ .Labels.host }}/x\"\n          allowed_hosts: [hooks.example, \"127.0.0.1:8080\"]", "", "", ""},
		{"templated allow-list", "http", "url: \"https://{{ .Labels.host }}/x\"\n          allowed_hosts: [\"{{ .Labels.host }}\"]", "params.allowed_hosts[0]", "allow-list entry is a template", "allowed_hosts:"},
		{"header file from a label", "http", "url: https://hooks.example/x\n          header_files:\n            Authorization: \"/run/secrets/{{ .Labels.file }}\"", "params.header_files.Authorization", "file path is a template", "Authorization:"},
		{"header name from a label", "http", "url: https://hooks.example/x\n          headers: {\"X-{{ .Labels.h }}\": v}", `params.headers.X-{{ .Labels.h }}`, "header name is a template", ""},
		{"argv[0] from a label", "exec", `argv: ["{{ .Labels.cmd }}", "-x"]`, "params.argv[0]", "argv[0] is a template", "argv:"},
		{"argv[1] from a label", "exec", `argv: ["echo", "{{ .Labels.cmd }}"]`, "", "", ""},
		{"argv[0] with allowed_commands", "exec", "argv: [\"{{ .Labels.cmd }}\"]\n          allowed_commands: [/usr/bin/true, /usr/bin/false]", "", "", ""},
		{"exec dir from a label", "exec", "argv: [\"true\"]\n          dir: \"/srv/{{ .Labels.dir }}\"", "params.dir", "file path is a template", "dir:"},
		{"secret file from a label", "kubernetes.patch_secret", "name: s\n          value_files:\n            password: \"/run/{{ .Labels.f }}\"", "params.value_files.password", "file path is a template", "password:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			yml := steerBase(t, dir) + fmt.Sprintf("policies:\n  - name: p\n    matchers: ['alertname=\"X\"']\n    steps:\n      - action: %s\n        params:\n          %s\n", tc.action, tc.params)
			file := filepath.Join(dir, "drguard.yaml")
			if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI("check", "--config.file="+file)
			if tc.field == "" {
				if code != ExitOK {
					t.Fatalf("check exited %d, want 0:\n%s%s", code, out, errOut)
				}
				return
			}
			if code != ExitFail {
				t.Fatalf("check exited %d, want 1:\n%s%s", code, out, errOut)
			}
			path := "policies[0].steps[0]." + tc.field
			if !strings.Contains(errOut, path+": ") || !strings.Contains(errOut, tc.want) {
				t.Errorf("check does not name %s with %q:\n%s", path, tc.want, errOut)
			}
			if tc.marker != "" {
				checkProblem(t, yml, path, tc.marker, tc.want)
			}
		})
	}
}

// steerBase writes a webhook token of 32 bytes into dir and returns a
// configuration using it that passes check with no warning.
func steerBase(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("auth:\n  webhook: {bearer_token_file: %q}\n", path)
}

// TestCheckWarnsAboutConcatenatedJSON: a JSON body that pastes a label
// into a string literal is a warning (check exits 0 and says so); the
// same body with {{ json ... }} is not.
func TestCheckWarnsAboutConcatenatedJSON(t *testing.T) {
	tests := []struct {
		name, body string
		warn       bool
	}{
		{"label inside quotes", `'{"t":"{{ .Labels.target }}"}'`, true},
		{"label unquoted", `'{"n": {{ .Labels.count }}}'`, true},
		{"json function", `'{"t":{{ json .Labels.target }}}'`, false},
		{"json in a pipeline", `'{"t":{{ .Labels.target | json }}}'`, false},
		{"run id inside quotes", `'{"run":"{{ .Run.ID }}"}'`, false},
		{"not JSON", `'target {{ .Labels.target }}'`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			yml := steerBase(t, dir) + fmt.Sprintf("policies:\n  - name: p\n    matchers: ['alertname=\"X\"']\n    steps:\n      - action: http\n        params:\n          url: https://hooks.example/x\n          body: %s\n", tc.body)
			file := filepath.Join(dir, "drguard.yaml")
			if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI("check", "--config.file="+file)
			if code != ExitOK {
				t.Fatalf("check exited %d, want 0 (a warning is no error):\n%s%s", code, out, errOut)
			}
			warned := strings.Contains(out, "policies[0].steps[0].params.body: JSON built by pasting")
			if warned != tc.warn {
				t.Errorf("warned = %v, want %v:\n%s", warned, tc.warn, out)
			}
		})
	}
}

// TestURLPasswordNotInTheAPI: an http step whose URL carries
// user:password@ calls its server with the password, while neither
// GET /api/v1/incidents/{id} nor its post-mortem nor the journal's files
// hold it.
func TestURLPasswordNotInTheAPI(t *testing.T) {
	const password = "pw-7d41be09"
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		mu.Lock()
		got = append(got, pw)
		mu.Unlock()
	}))
	defer srv.Close()
	hook := strings.Replace(srv.URL, "http://", "http://drguard:"+password+"@", 1)
	a := startApp(t, fmt.Sprintf(`
policies:
  - name: call-hook
    matchers: ['alertname="DemoDatabaseDown"']
    steps:
      - name: call
        action: http
        params:
          url: "%s/hook/{{ .Labels.target }}"
          body: '{"target":{{ json .Labels.target }}}'
`, hook))
	if code, body := do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", time.Now().Add(-time.Minute).UTC(), dbDown("pg-0"))); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}
	var id string
	testharness.Eventually(t, 10*time.Second, "the run to succeed", func() bool {
		var list struct{ Incidents []store.Incident }
		getJSON(t, a.URL+"/api/v1/incidents", &list)
		if len(list.Incidents) != 1 {
			return false
		}
		id = list.Incidents[0].ID
		var one struct{ Runs []store.Run }
		getJSON(t, a.URL+"/api/v1/incidents/"+id, &one)
		return len(one.Runs) == 1 && one.Runs[0].State == store.RunSucceeded
	})
	mu.Lock()
	calls := append([]string(nil), got...)
	mu.Unlock()
	if len(calls) != 1 || calls[0] != password {
		t.Fatalf("the server got passwords %q, want the real one once", calls)
	}
	for _, path := range []string{"/api/v1/incidents/" + id, "/api/v1/incidents/" + id + "/postmortem", "/api/v1/incidents"} {
		code, body := do(t, http.MethodGet, a.URL+path, adminToken, nil)
		if code != http.StatusOK || strings.Contains(string(body), password) {
			t.Errorf("GET %s: %d, holds the password: %v\n%s", path, code, strings.Contains(string(body), password), body)
		}
	}
	code, body := do(t, http.MethodGet, a.URL+"/api/v1/incidents/"+id, adminToken, nil)
	if code != http.StatusOK || !strings.Contains(string(body), "drguard:xxxxx@") {
		t.Errorf("GET /api/v1/incidents/%s does not show the redacted URL:\n%s", id, body)
	}
	a.Stop()
	err := filepath.Walk(a.Dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err == nil && bytes.Contains(raw, []byte(password)) {
			t.Errorf("journal file %s holds the password", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

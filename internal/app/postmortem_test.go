package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// postmortemPolicies is a policy an Alertmanager alert starts, and a
// tabletop drill of it whose recovered_when probe passes.
func postmortemPolicies(appURL string) string {
	return fmt.Sprintf(`
targets:
  http:
    - {name: app, service: demo, url: %q}
probes:
  - {name: app-ready, type: http, target: app, scenario: application_down, interval: 200ms, timeout: 200ms, failure_threshold: 1000}
policies:
  - name: restart-app
    matchers: ['alertname="AppDown"']
    steps:
      - {name: capture, action: exec, params: {argv: [echo, "app log: out of memory"]}, timeout: 10s}
drills:
  - name: tabletop
    policy: restart-app
    scenario: application_down
    objective: demo
    inject: {synthetic: true}
    recovered_when: app-ready
    timeout: 1m
`, appURL)
}

// getMarkdown GETs a URL with a token and returns the status, the
// Content-Type and the body.
func getMarkdown(t *testing.T, url, token string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// TestPostmortem: an incident's and a drill run's post-mortems, from the
// API (text/markdown for a viewer; 401 without credentials; 404 for an
// unknown id), from the CLI against the running daemon, and offline from
// the journal once the daemon has stopped (refused, naming --server,
// while it runs). Offline and online give the same text; no credential
// appears in it.
func TestPostmortem(t *testing.T) {
	appSrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer appSrv.Close()
	a := startApp(t, postmortemPolicies(appSrv.URL))
	code, body := do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken,
		webhook("firing", time.Now().Add(-time.Minute), map[string]string{"alertname": "AppDown", "service": "demo", "target": "app", "fp": "a1"}))
	if code != http.StatusOK {
		t.Fatalf("webhook: %d %s", code, body)
	}
	var inc string
	testharness.Eventually(t, 20*time.Second, "the alert's run to succeed", func() bool {
		var list struct{ Incidents []store.Incident }
		getJSON(t, a.URL+"/api/v1/incidents", &list)
		if len(list.Incidents) == 0 {
			return false
		}
		var one struct{ Runs []store.Run }
		inc = list.Incidents[0].ID
		getJSON(t, a.URL+"/api/v1/incidents/"+inc, &one)
		return len(one.Runs) == 1 && one.Runs[0].State == store.RunSucceeded
	})
	var run store.DrillRun
	if code, body := do(t, http.MethodPost, a.URL+"/api/v1/drills/tabletop/run", adminToken, nil); code != http.StatusAccepted {
		t.Fatalf("start drill: %d %s", code, body)
	}
	testharness.Eventually(t, 30*time.Second, "the drill to end", func() bool {
		var list struct {
			Drills []struct{ Last *struct{ ID string } }
		}
		getJSON(t, a.URL+"/api/v1/drills", &list)
		if len(list.Drills) == 1 && list.Drills[0].Last != nil {
			run.ID = list.Drills[0].Last.ID
		}
		return run.ID != ""
	})
	getJSON(t, a.URL+"/api/v1/drills/runs/"+run.ID, &run)
	if len(run.Incidents) != 1 {
		t.Fatalf("drill run %s: incidents %+v", run.ID, run.Incidents)
	}
	testharness.Eventually(t, 10*time.Second, "the drill's incident to resolve", func() bool {
		var one struct{ Incident store.Incident }
		getJSON(t, a.URL+"/api/v1/incidents/"+run.Incidents[0].ID, &one)
		return one.Incident.State == store.IncidentResolved
	})

	online := map[string]string{}
	for _, tc := range []struct {
		name, path, token string
		want              int
		heading           string
	}{
		{"incident, viewer", "/api/v1/incidents/" + inc + "/postmortem", viewerToken, http.StatusOK, "# Incident Post-Mortem: " + inc},
		{"drill run, viewer", "/api/v1/drills/runs/" + run.ID + "/postmortem", viewerToken, http.StatusOK, "# Drill Post-Mortem: " + run.ID + " (drill tabletop)"},
		{"no credentials", "/api/v1/incidents/" + inc + "/postmortem", "", http.StatusUnauthorized, ""},
		{"unknown incident", "/api/v1/incidents/inc-999999/postmortem", viewerToken, http.StatusNotFound, ""},
		{"unknown drill run", "/api/v1/drills/runs/drl-999999/postmortem", viewerToken, http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ctype, body := getMarkdown(t, a.URL+tc.path, tc.token)
			if code != tc.want {
				t.Fatalf("GET %s = %d %s, want %d", tc.path, code, body, tc.want)
			}
			if tc.want != http.StatusOK {
				return
			}
			if ctype != "text/markdown; charset=utf-8" || !strings.HasPrefix(body, tc.heading+"\n") {
				t.Errorf("GET %s: Content-Type %q, body:\n%s", tc.path, ctype, body)
			}
			online[tc.heading] = body
		})
	}
	if !strings.Contains(online["# Incident Post-Mortem: "+inc], "app log: out of memory") {
		t.Errorf("the incident's post-mortem lacks the captured log:\n%s", online["# Incident Post-Mortem: "+inc])
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(viewerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	server := []string{"--server=" + a.URL, "--token-file=" + tokenFile}
	checkCLI(t, "online", append([]string{"postmortem", inc}, server...), ExitOK, online["# Incident Post-Mortem: "+inc])
	checkCLI(t, "online drill run", append([]string{"postmortem", "--drill-run=" + run.ID}, server...), ExitOK, online["# Drill Post-Mortem: "+run.ID+" (drill tabletop)"])
	checkCLI(t, "online unknown", append([]string{"postmortem", "inc-999999"}, server...), ExitFail, "404")
	checkCLI(t, "offline while the daemon runs", []string{"postmortem", "--storage.path=" + a.Dir, inc}, ExitFail, "--server=URL")

	// The console's incident page links to the post-mortem, which its
	// session cookie may read.
	u := signIn(t, a, viewerToken)
	link := "/api/v1/incidents/" + inc + "/postmortem"
	if page := u.page("/incidents/" + inc); !strings.Contains(page, `href="`+link+`"`) {
		t.Errorf("the incident page does not link to %s:\n%s", link, page)
	}
	if code, body, h := u.get(link); code != http.StatusOK || h.Get("Content-Type") != "text/markdown; charset=utf-8" || body != online["# Incident Post-Mortem: "+inc] {
		t.Errorf("GET %s signed in: %d %s %q", link, code, h.Get("Content-Type"), body)
	}

	a.Stop()
	cfgFile := filepath.Join(t.TempDir(), "drguard.yaml")
	if err := os.WriteFile(cfgFile, []byte(baseConfig+fmt.Sprintf("storage: {path: %q}\n", a.Dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	checkCLI(t, "offline", []string{"postmortem", "--storage.path=" + a.Dir, inc}, ExitOK, online["# Incident Post-Mortem: "+inc])
	checkCLI(t, "offline drill run", []string{"postmortem", "--drill-run", run.ID, "--storage.path=" + a.Dir}, ExitOK, online["# Drill Post-Mortem: "+run.ID+" (drill tabletop)"])
	checkCLI(t, "offline from the configuration", []string{"postmortem", "--config.file=" + cfgFile, inc}, ExitOK, online["# Incident Post-Mortem: "+inc])
	checkCLI(t, "offline unknown", []string{"postmortem", "--storage.path=" + a.Dir, "inc-999999"}, ExitFail, `no incident "inc-999999"`)
	checkCLI(t, "offline unknown drill run", []string{"postmortem", "--storage.path=" + a.Dir, "--drill-run=drl-999999"}, ExitFail, `no drill run "drl-999999"`)
	checkCLI(t, "no journal", []string{"postmortem", "--storage.path=" + t.TempDir(), inc}, ExitFail, "no such file")
	checkCLI(t, "no source", []string{"postmortem", inc}, ExitUsage, "give one of")
	checkCLI(t, "two sources", append([]string{"postmortem", "--storage.path=" + a.Dir, inc}, server...), ExitUsage, "give one of")
	checkCLI(t, "no id", []string{"postmortem", "--storage.path=" + a.Dir}, ExitUsage, "usage:")

	for heading, md := range online {
		for _, secret := range []string{webhookToken, adminToken, approverToken, approver2, viewerToken, "test-basic-password"} {
			if strings.Contains(md, secret) {
				t.Errorf("%s: a credential is in the post-mortem", heading)
			}
		}
	}
}

// checkCLI runs drguard and checks its exit code, and that want is its
// whole output (exit 0) or part of its error output.
func checkCLI(t *testing.T, name string, args []string, code int, want string) {
	t.Helper()
	got, out, errOut := runCLI(args...)
	switch {
	case got != code:
		t.Errorf("%s: drguard %s exited %d, want %d; stderr: %s", name, strings.Join(args, " "), got, code, errOut)
	case code == ExitOK && out != want:
		t.Errorf("%s: output differs from the API's:\n%s\n--- API:\n%s", name, out, want)
	case code != ExitOK && !strings.Contains(errOut, want):
		t.Errorf("%s: stderr %q does not say %q", name, errOut, want)
	}
}

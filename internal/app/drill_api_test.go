package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// tabletop is a drill whose synthetic detection starts a policy with a
// slow step, and whose recovered_when probe checks an HTTP endpoint the
// test controls.
func tabletop(appURL, marker string) string {
	return fmt.Sprintf(`
targets:
  http:
    - {name: app, service: demo, url: %q}
probes:
  - {name: app-ready, type: http, target: app, scenario: application_down, interval: 200ms, timeout: 200ms, failure_threshold: 1000}
policies:
  - name: recover-demo
    matchers: ['scenario="outage"', 'service="demo"']
    steps:
      - {name: slow, action: exec, params: {argv: [sleep, "1"]}, timeout: 10s}
      - {name: mark, action: exec, params: {argv: [touch, %q]}, timeout: 10s}
drills:
  - name: tabletop
    policy: recover-demo
    inject: {synthetic: true}
    recovered_when: app-ready
    timeout: 1m
`, appURL, marker)
}

// TestDrillAPI: the drill endpoints' contract. Viewers list drills and read
// runs (JSON, or Markdown for Accept: text/markdown); only admins start
// (202 with the run and its Location) and abort them; an unknown drill or
// run is 404; a drill already running, or a run that has ended, is 409. An
// aborted drill stops its run at the next step.
func TestDrillAPI(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer appSrv.Close()
	marker := filepath.Join(t.TempDir(), "marked")
	a := startApp(t, tabletop(appSrv.URL, marker))
	var list struct {
		Drills []struct {
			Drill, Scenario, Injection, Running string
			Last                                *struct{ ID, State string }
		}
	}
	getJSONAs(t, a.URL+"/api/v1/drills", viewerToken, &list)
	if len(list.Drills) != 1 || list.Drills[0].Drill != "tabletop" || list.Drills[0].Scenario != "outage" || list.Drills[0].Last != nil {
		t.Fatalf("drills = %+v", list.Drills)
	}
	for _, tc := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"viewer may not start", http.MethodPost, "/api/v1/drills/tabletop/run", viewerToken, http.StatusForbidden},
		{"approver may not start", http.MethodPost, "/api/v1/drills/tabletop/run", approverToken, http.StatusForbidden},
		{"anonymous may not list", http.MethodGet, "/api/v1/drills", "", http.StatusUnauthorized},
		{"unknown drill", http.MethodPost, "/api/v1/drills/nope/run", adminToken, http.StatusNotFound},
		{"unknown run", http.MethodGet, "/api/v1/drills/runs/drl-999999", viewerToken, http.StatusNotFound},
		{"abort an unknown run", http.MethodPost, "/api/v1/drills/runs/drl-999999/abort", adminToken, http.StatusNotFound},
	} {
		if code, body := do(t, tc.method, a.URL+tc.path, tc.token, nil); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}

	healthy.Store(false) // recovered_when will not pass: the drill stays up
	// Drills start on the leader only: until the app's first term has
	// begun the answer is 503, as on a follower.
	var code int
	var body []byte
	testharness.Eventually(t, 10*time.Second, "the leader to take the drill", func() bool {
		code, body = do(t, http.MethodPost, a.URL+"/api/v1/drills/tabletop/run", adminToken, nil)
		return code != http.StatusServiceUnavailable
	})
	var run store.DrillRun
	if code != http.StatusAccepted || json.Unmarshal(body, &run) != nil || run.ID == "" || run.State != store.DrillRunning || run.StartedBy != "alice" {
		t.Fatalf("start: %d %s", code, body)
	}
	if code, body := do(t, http.MethodPost, a.URL+"/api/v1/drills/tabletop/run", adminToken, nil); code != http.StatusConflict {
		t.Errorf("second start: %d %s, want 409", code, body)
	}
	testharness.Eventually(t, 10*time.Second, "the drill's run to execute its slow step", func() bool {
		getJSONAs(t, a.URL+"/api/v1/drills/runs/"+run.ID, viewerToken, &run)
		return len(run.Incidents) == 1 && len(run.Incidents[0].Runs) == 1
	})
	if code, body := do(t, http.MethodPost, a.URL+"/api/v1/drills/runs/"+run.ID+"/abort", viewerToken, nil); code != http.StatusForbidden {
		t.Errorf("viewer abort: %d %s", code, body)
	}
	if code, body := do(t, http.MethodPost, a.URL+"/api/v1/drills/runs/"+run.ID+"/abort", adminToken, nil); code != http.StatusOK {
		t.Fatalf("abort: %d %s", code, body)
	}
	testharness.Eventually(t, 10*time.Second, "the drill to end aborted", func() bool {
		getJSONAs(t, a.URL+"/api/v1/drills/runs/"+run.ID, viewerToken, &run)
		return run.State == store.DrillAborted
	})
	var detail struct{ Runs []store.Run }
	getJSON(t, a.URL+"/api/v1/incidents/"+run.Incidents[0].ID, &detail)
	if r := detail.Runs[0]; r.State != store.RunBlocked || r.Steps[1].State != store.StepBlocked || !strings.Contains(r.Steps[1].Reason, "stopped by alice") {
		t.Errorf("the drill's run after the abort: %s, steps %s/%s (%s)", r.State, r.Steps[0].State, r.Steps[1].State, r.Steps[1].Reason)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the step after the abort ran")
	}
	if code, body := do(t, http.MethodPost, a.URL+"/api/v1/drills/runs/"+run.ID+"/abort", adminToken, nil); code != http.StatusConflict {
		t.Errorf("abort an ended drill: %d %s, want 409", code, body)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, a.URL+"/api/v1/drills/runs/"+run.ID, nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	req.Header.Set("Accept", "text/markdown")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	md, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/markdown") || !strings.Contains(string(md), "# DR drill tabletop: aborted") {
		t.Errorf("markdown: %s\n%s", ct, md)
	}
	if v := metric(t, a.Registry, "drguard_drill_last_run_timestamp_seconds", "drill", "tabletop"); v < float64(run.StartedAt.Unix()) {
		t.Errorf("drguard_drill_last_run_timestamp_seconds = %v", v)
	}
}

// TestDrillCommandUsage: drguard drill needs a drill, and --execute needs a
// server and a token; an unknown drill is named with the ones configured.
func TestDrillCommandUsage(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "drguard.yaml")
	if err := os.WriteFile(cfg, []byte(baseConfig+tabletop("http://127.0.0.1:1", "/tmp/x")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"drill", "--config.file=" + cfg}, ExitUsage, "usage: drguard drill"},
		{[]string{"drill", "--drill=tabletop", "--execute"}, ExitUsage, "--execute needs --server and --token-file"},
		{[]string{"drill", "--config.file=" + cfg, "--drill=nope"}, ExitFail, `no drill "nope"`},
		{[]string{"drill", "--config.file=" + cfg, "--drill=tabletop", "--format=xml"}, ExitUsage, "--format is table or json"},
	} {
		var out, errOut strings.Builder
		code := Main(context.Background(), tc.args, IO{Stdout: &out, Stderr: &errOut})
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.want, out.String(), errOut.String())
		}
	}
}

// getJSONAs GETs url with token and decodes the body into v.
func getJSONAs(t *testing.T, url, token string, v any) {
	t.Helper()
	code, body := do(t, http.MethodGet, url, token, nil)
	if code != http.StatusOK || json.Unmarshal(body, v) != nil {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
}

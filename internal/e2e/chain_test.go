package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestAlertChain runs the whole chain with real binaries: the application
// drguard probes starts failing → drguard_probe_success drops to 0 →
// Prometheus, scraping drguard and evaluating rules/, fires
// DrguardProbeFailing after its `for: 1m` → Alertmanager, configured with
// deploy/alertmanager/receiver.yaml, posts it to drguard's webhook with the
// bearer token from its credentials_file → the policy matching the alert
// runs its exec step, once.
func TestAlertChain(t *testing.T) {
	start := time.Now()
	s := startScenario(t, scenarioOptions{policies: func(dir string) string {
		return "policies:" + recordingPolicy("page-on-probe-alert", `alertname="DrguardProbeFailing"`, dir, "chain-", "probe")
	}})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(webhookToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	am := alertmanagerWith(t, receiverConfig(t, s.URL+"/api/v1/alerts", tokenFile))
	p := promScraping(t, s.drguard, 2, fmt.Sprintf(`
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
`, am))
	s.waitProbesRan(t)
	ready := time.Now()
	t.Logf("components ready after %s", ready.Sub(start).Round(time.Millisecond))

	s.AppHealthy.Store(false) // the failure
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alert, err := p.WaitForAlert(ctx, "DrguardProbeFailing")
	if err != nil {
		t.Fatal(err)
	}
	fired := time.Now()
	if alert.Labels["probe"] != "app-readiness" || alert.Labels["scenario"] != "probe_failure" || alert.Labels["service"] != "shop" {
		t.Errorf("alert labels %v", alert.Labels)
	}
	t.Logf("Prometheus fired DrguardProbeFailing %s after the failure", fired.Sub(ready).Round(time.Millisecond))

	testharness.Eventually(t, 90*time.Second, "the policy's exec step to run", func() bool { return s.execRuns(t, "chain-app-readiness") > 0 })
	ran := time.Now()
	t.Logf("the exec step ran %s after the alert fired, %s after the failure", ran.Sub(fired).Round(time.Millisecond), ran.Sub(ready).Round(time.Millisecond))

	var list struct {
		Incidents []struct {
			Labels map[string]string `json:"labels"`
			Source string            `json:"source"`
		} `json:"incidents"`
	}
	code, body := s.do(t, http.MethodGet, "/api/v1/incidents", adminToken, nil)
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /api/v1/incidents: %d %s", code, body)
	}
	found := false
	for _, in := range list.Incidents {
		if in.Labels["alertname"] == "DrguardProbeFailing" && in.Labels["probe"] == "app-readiness" {
			found = true
		}
	}
	if !found {
		t.Errorf("no incident for DrguardProbeFailing from Alertmanager in %s", body)
	}
	time.Sleep(3 * time.Second)
	if n := s.execRuns(t, "chain-app-readiness"); n != 1 {
		t.Errorf("the step ran %d times, want once", n)
	}
	t.Logf("chain total %s (start to step)", time.Since(start).Round(time.Millisecond))
}

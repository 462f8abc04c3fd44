package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// webhookPayload is an Alertmanager v4 notification with one alert.
func webhookPayload(status string, labels map[string]string, startsAt time.Time) []byte {
	alert := map[string]any{"status": status, "labels": labels, "annotations": map[string]string{"summary": "e2e"},
		"startsAt": startsAt, "endsAt": time.Time{}, "fingerprint": "e2e-" + labels["target"]}
	if status == "resolved" {
		alert["endsAt"] = time.Now().UTC()
	}
	b, _ := json.Marshal(map[string]any{"version": "4", "status": status, "receiver": "drguard", "groupKey": "e2e",
		"alerts": []any{alert}, "groupLabels": map[string]string{}, "commonLabels": labels,
		"commonAnnotations": map[string]string{}, "externalURL": "http://alertmanager"})
	return b
}

// exercise drives drguard's webhook so that the intake, detection,
// incident and remediation metrics have series: an alert whose step runs,
// then its resolution; an alert whose step fails; and an alert whose second
// incident a cooldown blocks.
func exercise(t *testing.T, s *scenario) {
	t.Helper()
	post := func(status string, labels map[string]string, starts time.Time) {
		t.Helper()
		if code, body := s.do(t, http.MethodPost, "/api/v1/alerts", webhookToken, bytes.NewReader(webhookPayload(status, labels, starts))); code != http.StatusOK {
			t.Fatalf("post %s %s: %d %s", status, labels["alertname"], code, body)
		}
	}
	starts := time.Now().UTC().Add(-time.Minute)
	ok := map[string]string{"alertname": "E2ETest", "service": "shop", "scenario": "database_failure", "target": "pg-1"}
	post("firing", ok, starts)
	testharness.Eventually(t, 15*time.Second, "the policy's step to run", func() bool { return s.execRuns(t, "ran-") == 1 })
	post("resolved", ok, starts)

	post("firing", map[string]string{"alertname": "E2EFail", "service": "shop", "scenario": "database_failure", "target": "pg-2"}, starts)
	cool := map[string]string{"alertname": "E2ECooldown", "service": "shop", "scenario": "database_failure", "target": "pg-3"}
	post("firing", cool, starts)
	testharness.Eventually(t, 15*time.Second, "the cooldown policy's first run", func() bool { return s.execRuns(t, "cool-") == 1 })
	// The second alert must meet the cooldown, not the first run still
	// being journaled (that is blocked as active_run).
	testharness.Eventually(t, 15*time.Second, "the cooldown policy's first run to end", func() bool { return s.runsEnded(t, "E2ECooldown") })
	post("firing", cool, starts.Add(time.Second)) // a new incident for the same target
	testharness.Eventually(t, 15*time.Second, "a failed step and a blocked step", func() bool {
		text := string(s.scrape(t))
		return strings.Contains(text, `result="failed"`) && strings.Contains(text, `result="blocked_cooldown"`)
	})
	s.waitProbesRan(t) // the heartbeat has been written once
	drillOnce(t, s.drguard, "e2e-tabletop")
}

// drillOnce runs a drill through the API and waits for it to end, so that
// every drill metric has series.
func drillOnce(t *testing.T, d *drguard, name string) {
	t.Helper()
	if code, body := d.do(t, http.MethodPost, "/api/v1/drills/"+name+"/run", adminToken, nil); code != http.StatusAccepted {
		t.Fatalf("start drill %s: %d %s", name, code, body)
	}
	var list struct {
		Drills []struct {
			Last *struct {
				ID         string
				RTOSeconds *float64
				RPOSeconds *float64
			}
		}
	}
	testharness.Eventually(t, 30*time.Second, "drill "+name+" to end", func() bool {
		code, body := d.do(t, http.MethodGet, "/api/v1/drills", adminToken, nil)
		return code == http.StatusOK && json.Unmarshal(body, &list) == nil && len(list.Drills) == 1 && list.Drills[0].Last != nil
	})
	if last := list.Drills[0].Last; last.RTOSeconds == nil || last.RPOSeconds == nil {
		_, report := d.do(t, http.MethodGet, "/api/v1/drills/runs/"+last.ID, adminToken, nil)
		t.Fatalf("drill %s measured no RTO or no RPO:\n%s", name, report)
	}
}

// testPolicies answers the alerts that exercise sends.
func testPolicies(dir string) string {
	return "policies:" + recordingPolicy("e2e-webhook", `alertname="E2ETest"`, dir, "ran-", "target") +
		strings.Replace(recordingPolicy("e2e-cooldown", `alertname="E2ECooldown"`, dir, "cool-", "target"), "cooldown: 0s", "cooldown: 1h", 1) + `
  - name: e2e-fail
    matchers: ['alertname="E2EFail"']
    steps:
      - {name: fail, action: exec, params: {argv: ["false"]}, timeout: 10s}
  - name: e2e-drill
    matchers: ['scenario="tabletop"', 'service="shop"']
    steps:
      - {name: recover, action: exec, params: {argv: ["true"]}, timeout: 10s}
drills:
  - name: e2e-tabletop
    policy: e2e-drill
    inject: {synthetic: true}
    recovered_when: app-readiness
    heartbeat: pg-heartbeat
    serving_target: primary
    schedule: {every: 90d}
`
}

// TestMetricsExported starts drguard with objectives, probes, a backup and
// a restore test on real components, exercises the webhook, and checks
// that every metric name used in rules/ and dashboards/ is in its scrape,
// and that `promtool check metrics` finds nothing to complain about.
func TestMetricsExported(t *testing.T) {
	s := startScenario(t, scenarioOptions{policies: testPolicies, backupInterval: 5 * time.Second})
	exercise(t, s)
	s.waitProbesRan(t)
	s.waitBackupAndRestoreTest(t, time.Minute)
	text := s.scrape(t)
	exported := sampleNames(families(t, text))

	var missing []string
	for name, where := range usedNames(t) {
		if !exported[name] {
			slices.Sort(where)
			missing = append(missing, fmt.Sprintf("  %s (used by %s)", name, strings.Join(slices.Compact(where), "; ")))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d metric names used by rules/ or dashboards/ are not exported by a drguard with objectives, probes, backups and restore tests configured:\n%s",
			len(missing), strings.Join(missing, "\n"))
	}

	t.Run("promtool check metrics", func(t *testing.T) {
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			testharness.Need(t, "promtool (apt-get install prometheus)", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(text)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

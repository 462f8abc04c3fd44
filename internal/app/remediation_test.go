package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// countingPolicy returns a policy whose steps each create one new file in
// dir per execution (mktemp), so executions can be counted on disk.
func countingPolicy(dir string, gated bool) string {
	approval := ""
	if gated {
		approval = "\n        approval: {required: true, expires: 10m}"
	}
	return fmt.Sprintf(`
policies:
  - name: restart-db
    matchers: ['alertname="DemoDatabaseDown"']
    cooldown: 0s
    steps:
      - name: restart
        action: exec
        params:
          argv: ["mktemp", "-p", %q, "ran-{{ .Labels.target }}.XXXXXX"]%s
`, dir, approval)
}

func executions(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "ran-*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func dbDown(target string) map[string]string {
	return map[string]string{"alertname": "DemoDatabaseDown", "service": "demo", "scenario": "database_failure", "target": target, "fp": "fp-" + target}
}

// TestRepeatedNotificationsRunOnce checks that Alertmanager's re-sends of
// one alert update the incident and never start a second run, and that the
// resolved notification closes the incident and starts nothing.
func TestRepeatedNotificationsRunOnce(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, false))
	starts := time.Now().Add(-time.Minute).UTC()
	for i := 0; i < 20; i++ {
		if code, body := do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", starts, dbDown("pg-0"))); code != 200 {
			t.Fatalf("post %d: %d %s", i, code, body)
		}
	}
	testharness.Eventually(t, 10*time.Second, "one execution", func() bool { return executions(t, out) == 1 })
	if code, _ := do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("resolved", starts, dbDown("pg-0"))); code != 200 {
		t.Fatal("resolved notification refused")
	}
	var inc store.Incident
	testharness.Eventually(t, 10*time.Second, "the incident to resolve", func() bool {
		var list struct{ Incidents []store.Incident }
		getJSON(t, a.URL+"/api/v1/incidents", &list)
		if len(list.Incidents) != 1 {
			t.Fatalf("%d incidents for one alert", len(list.Incidents))
		}
		inc = list.Incidents[0]
		return inc.State == store.IncidentResolved
	})
	// Identical re-sends within a second of a durable write are answered
	// without one (docs/design.md): at least one of the 19 is recorded.
	if inc.Repeats < 1 || inc.Repeats > 19 || len(inc.RunIDs) != 1 {
		t.Errorf("incident repeats=%d runs=%v, want 1 to 19 repeats and one run", inc.Repeats, inc.RunIDs)
	}
	time.Sleep(300 * time.Millisecond)
	if n := executions(t, out); n != 1 {
		t.Fatalf("%d executions, want exactly 1", n)
	}
	var detail struct {
		Incident store.Incident
		Runs     []store.Run
	}
	getJSON(t, a.URL+"/api/v1/incidents/"+inc.ID, &detail)
	if len(detail.Runs) != 1 || detail.Runs[0].State != store.RunSucceeded || detail.Runs[0].Steps[0].StartedAt.IsZero() || detail.Runs[0].Steps[0].EndedAt.IsZero() {
		t.Fatalf("timeline does not show the finished step with timestamps: %+v", detail.Runs)
	}
}

// TestGatedStepApproval checks the approval flow over HTTP: the pending
// step shows its rendered parameters and expiry, two concurrent approvals
// give one 200 and one 409, and the step runs once.
func TestGatedStepApproval(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, true))
	do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", time.Now().UTC(), dbDown("pg-1")))

	var pending struct{ Approvals []store.Approval }
	testharness.Eventually(t, 10*time.Second, "a pending approval", func() bool {
		getJSON(t, a.URL+"/remediate", &pending)
		return len(pending.Approvals) == 1
	})
	ap := pending.Approvals[0]
	argv, _ := json.Marshal(ap.Params["argv"])
	if !strings.Contains(string(argv), "ran-pg-1.XXXXXX") {
		t.Errorf("pending approval does not show rendered params: %s", argv)
	}
	if d := time.Until(ap.ExpiresAt); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("expiry %v from now, want ~10m", d)
	}
	if executions(t, out) != 0 {
		t.Fatal("gated step ran before approval")
	}

	codes := make(chan int, 2)
	var wg sync.WaitGroup
	for _, tok := range []string{approverToken, approver2} {
		wg.Add(1)
		go func(tok string) {
			defer wg.Done()
			code, _ := do(t, http.MethodPost, a.URL+"/remediate/"+ap.ID+"/approve", tok, []byte(`{"comment":"go"}`))
			codes <- code
		}(tok)
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[200] != 1 || got[409] != 1 {
		t.Fatalf("concurrent approvals answered %v, want one 200 and one 409", got)
	}
	testharness.Eventually(t, 10*time.Second, "the approved step to run", func() bool { return executions(t, out) == 1 })
	if code, _ := do(t, http.MethodPost, a.URL+"/remediate/"+ap.ID+"/reject", approverToken, nil); code != 409 {
		t.Errorf("deciding again: %d, want 409", code)
	}
	time.Sleep(300 * time.Millisecond)
	if n := executions(t, out); n != 1 {
		t.Fatalf("%d executions after approval, want 1", n)
	}
}

// TestApproveViaCLI checks `drguard approve` against a running daemon.
func TestApproveViaCLI(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, true))
	do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", time.Now().UTC(), dbDown("pg-2")))
	var pending struct{ Approvals []store.Approval }
	testharness.Eventually(t, 10*time.Second, "a pending approval", func() bool {
		getJSON(t, a.URL+"/remediate", &pending)
		return len(pending.Approvals) == 1
	})
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(approverToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := Main(t.Context(), []string{"approve", pending.Approvals[0].ID, "--server=" + a.URL, "--token-file=" + tokFile, "--comment=cli"}, IO{Stdout: &stdout, Stderr: &stderr})
	if code != 0 || !strings.Contains(stdout.String(), "approved") {
		t.Fatalf("approve exited %d: %s %s", code, stdout.String(), stderr.String())
	}
	testharness.Eventually(t, 10*time.Second, "the approved step to run", func() bool { return executions(t, out) == 1 })
	code = Main(t.Context(), []string{"approve", pending.Approvals[0].ID, "--reject", "--server=" + a.URL, "--token-file=" + tokFile}, IO{Stdout: &stdout, Stderr: &stderr})
	if code != 1 || !strings.Contains(stderr.String(), "409") {
		t.Fatalf("second decision exited %d: %s", code, stderr.String())
	}
}

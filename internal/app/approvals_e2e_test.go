package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// pendingFor waits for the pending approval of target and returns it as
// GET /remediate shows it.
func pendingFor(t *testing.T, a *testApp, target string) approvalJSON {
	t.Helper()
	var found approvalJSON
	testharness.Eventually(t, 10*time.Second, "a pending approval for "+target, func() bool {
		var list struct{ Approvals []approvalJSON }
		getJSON(t, a.URL+"/remediate", &list)
		for _, ap := range list.Approvals {
			if ap.Target == target {
				found = ap
				return true
			}
		}
		return false
	})
	return found
}

// approvalJSON is an approval as the API shows it.
type approvalJSON struct {
	store.Approval
	StillNeeded int
	ApprovedBy  []string
	Status      string
}

func approve(t *testing.T, a *testApp, id, token string) (int, approvalJSON, string) {
	t.Helper()
	code, body := do(t, http.MethodPost, a.URL+"/remediate/"+id+"/approve", token, []byte(`{"comment":"checked"}`))
	var ap approvalJSON
	_ = json.Unmarshal(body, &ap)
	return code, ap, string(body)
}

// runsOf returns the runs of the incident of target.
func runsOf(t *testing.T, a *testApp, target string) []store.Run {
	t.Helper()
	var list struct{ Incidents []store.Incident }
	getJSON(t, a.URL+"/api/v1/incidents", &list)
	for _, in := range list.Incidents {
		if in.Labels["target"] == target {
			var detail struct{ Runs []store.Run }
			getJSON(t, a.URL+"/api/v1/incidents/"+in.ID, &detail)
			return detail.Runs
		}
	}
	t.Fatalf("no incident for %s", target)
	return nil
}

// TestStaleAlertNeverActs races a gated step's approval with its alert's
// resolution over HTTP, in both orders, 20 times each: the step never
// starts and every run ends obsolete. Approving after the resolution was
// answered is a conflict (409); approving just before it is accepted, and
// the resolution still stops the step before it starts.
func TestStaleAlertNeverActs(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, true))
	starts := time.Now().Add(-time.Minute).UTC()
	post := func(status, target string) {
		t.Helper()
		if code, body := do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook(status, starts, dbDown(target))); code != http.StatusOK {
			t.Fatalf("post %s %s: %d %s", status, target, code, body)
		}
	}
	var targets []string
	for i := range 40 {
		target := fmt.Sprintf("pg-%02d", i)
		targets = append(targets, target)
		post("firing", target)
		ap := pendingFor(t, a, target)
		if i < 20 { // approve after resolve
			post("resolved", target)
			if code, _, body := approve(t, a, ap.ID, approverToken); code != http.StatusConflict || strings.Contains(body, "conflict: conflict") {
				t.Fatalf("%s: approving after the resolution answered %d %s; want 409, said once", target, code, body)
			}
			continue
		}
		// resolve after approve
		if code, _, body := approve(t, a, ap.ID, approverToken); code != http.StatusOK {
			t.Fatalf("%s: approving before the resolution answered %d %s", target, code, body)
		}
		post("resolved", target)
	}
	for _, target := range targets {
		testharness.Eventually(t, 15*time.Second, "the run of "+target+" to end", func() bool { return !runsOf(t, a, target)[0].Active() })
		r := runsOf(t, a, target)[0]
		if r.State != store.RunObsolete || r.Steps[0].Attempts != 0 || !strings.Contains(r.Reason, "alert resolved") {
			t.Errorf("%s: run %s (%s), step attempts %d; want obsolete, never started", target, r.State, r.Reason, r.Steps[0].Attempts)
		}
	}
	if n := executions(t, out); n != 0 {
		t.Fatalf("%d gated steps ran on a resolved alert", n)
	}
}

// fourEyesConfig is a configuration with four-eyes on, five approvers
// (u1…u5, tokens tok-u1…) and a destructive gated step that leaves a mark
// per execution in dir.
func fourEyesConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	var users strings.Builder
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&users, "    - {name: u%d, role: approver, token: tok-user-0000000u%d}\n", i, i)
	}
	yaml := fmt.Sprintf(`
auth:
  four_eyes: true
  webhook: {bearer_token: %s}
  users:
    - {name: alice, role: admin, token: %s}
%s
policies:
  - name: failover
    matchers: ['alertname="DemoDatabaseDown"']
    steps:
      - name: promote
        action: exec
        destructive: true
        approval: {required: true, expires: 10m}
        params:
          argv: ["mktemp", "-p", %q, "ran-{{ .Labels.target }}.XXXXXX"]
`, webhookToken, adminToken, users.String(), dir)
	path := filepath.Join(t.TempDir(), "drguard.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, KnownActions())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

// TestFourEyesOverHTTP: a destructive gated step needs two approvers. One
// approval leaves it waiting ("1 more approval needed", shown with who
// approved and the hash); the same person again is refused (403); a
// second person runs it once. Then 50 concurrent approvals from 5 people:
// exactly two succeed, and the step runs once.
func TestFourEyesOverHTTP(t *testing.T) {
	out := t.TempDir()
	a := startAppWith(t, fourEyesConfig(t, out), filepath.Join(t.TempDir(), "data"))
	starts := time.Now().UTC()
	do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", starts, dbDown("pg-1")))
	ap := pendingFor(t, a, "pg-1")
	if ap.StillNeeded != 2 || ap.Status != "2 more approvals needed" {
		t.Fatalf("new approval: still needed %d (%q), want 2", ap.StillNeeded, ap.Status)
	}
	if code, got, body := approve(t, a, ap.ID, "tok-user-0000000u1"); code != http.StatusOK || got.Status != "1 more approval needed" {
		t.Fatalf("first approval: %d %s", code, body)
	}
	ap = pendingFor(t, a, "pg-1")
	if ap.Status != "1 more approval needed" || strings.Join(ap.ApprovedBy, ",") != "u1" {
		t.Errorf("GET /remediate after one approval: %q by %v", ap.Status, ap.ApprovedBy)
	}
	page := htmlPage(t, a)
	for _, want := range []string{"1 more approval needed", "approved by u1", ap.ParamsHash} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the HTML page does not show %q", want)
		}
	}
	if code, _, body := approve(t, a, ap.ID, "tok-user-0000000u1"); code != http.StatusForbidden {
		t.Fatalf("the same person again: %d %s, want 403", code, body)
	}
	if executions(t, out) != 0 {
		t.Fatal("the step ran after one approval")
	}
	if code, got, body := approve(t, a, ap.ID, "tok-user-0000000u2"); code != http.StatusOK || got.State != store.ApprovalApproved {
		t.Fatalf("second person: %d %s", code, body)
	}
	testharness.Eventually(t, 10*time.Second, "the step to run", func() bool { return executions(t, out) == 1 })

	// 50 concurrent approvals from 5 people on another incident.
	do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", starts, dbDown("pg-2")))
	ap = pendingFor(t, a, "pg-2")
	codes := concurrentApprovals(t, a, ap.ID, 50, 5)
	if codes[http.StatusOK] != 2 || codes[http.StatusOK]+codes[http.StatusForbidden]+codes[http.StatusConflict] != 50 {
		t.Fatalf("50 concurrent approvals answered %v; want exactly 2 × 200, the rest 403 or 409", codes)
	}
	testharness.Eventually(t, 10*time.Second, "the second run to end", func() bool { return !runsOf(t, a, "pg-2")[0].Active() })
	time.Sleep(200 * time.Millisecond)
	if n := executions(t, out); n != 2 {
		t.Fatalf("%d executions in all, want 2 (one per incident)", n)
	}
	if r := runsOf(t, a, "pg-2")[0]; r.State != store.RunSucceeded || r.Steps[0].Attempts != 1 {
		t.Errorf("run %s, attempts %d", r.State, r.Steps[0].Attempts)
	}
}

// htmlPage GETs /remediate as a browser would.
func htmlPage(t *testing.T, a *testApp) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, a.URL+"/remediate", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /remediate (HTML): %d %v", resp.StatusCode, err)
	}
	return page
}

// concurrentApprovals sends n approvals of id at once, from people u1…uK
// in turn, and counts the answers by status.
func concurrentApprovals(t *testing.T, a *testApp, id string, n, people int) map[int]int {
	t.Helper()
	answers := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range answers {
		wg.Go(func() {
			<-start
			token := fmt.Sprintf("tok-user-0000000u%d", i%people+1)
			answers[i], _, _ = testharness.Send(http.MethodPost, a.URL+"/remediate/"+id+"/approve", token, strings.NewReader(`{}`))
		})
	}
	close(start)
	wg.Wait()
	codes := map[int]int{}
	for _, c := range answers {
		codes[c]++
	}
	return codes
}

// TestApproveCLIBindsTheHash: `drguard approve --params-hash` sends the
// hash the approver reviewed; a hash that is not the step's is refused and
// decides nothing, and the CLI prints the hash it approved.
func TestApproveCLIBindsTheHash(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, true))
	do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", time.Now().UTC(), dbDown("pg-3")))
	ap := pendingFor(t, a, "pg-3")
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(approverToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(hash string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := Main(t.Context(), []string{"approve", ap.ID, "--server=" + a.URL, "--token-file=" + tokFile, "--params-hash=" + hash}, IO{Stdout: &stdout, Stderr: &stderr})
		return code, stdout.String(), stderr.String()
	}
	if code, _, stderr := cli("sha256:0000"); code != ExitFail || !strings.Contains(stderr, "409") || strings.Contains(stderr, "conflict: conflict") {
		t.Fatalf("approve with another hash exited %d: %s", code, stderr)
	}
	if ap2 := pendingFor(t, a, "pg-3"); len(ap2.Votes) != 0 {
		t.Fatalf("a refused decision counted: %+v", ap2.Votes)
	}
	code, stdout, stderr := cli(ap.ParamsHash)
	if code != ExitOK || !strings.Contains(stdout, "approved") || !strings.Contains(stdout, ap.ParamsHash) {
		t.Fatalf("approve with the shown hash exited %d: %s %s", code, stdout, stderr)
	}
	testharness.Eventually(t, 10*time.Second, "the approved step to run", func() bool { return executions(t, out) == 1 })
}

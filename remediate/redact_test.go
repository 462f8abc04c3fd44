package remediate

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

func TestRedactString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://u:pw@h:1/x", "http://u:xxxxx@h:1/x"},
		{"https://u:p@ss@h/x?y=z", "https://u:xxxxx@h/x?y=z"},
		{"postgres://app:s3cret@db:5432/app?sslmode=disable", "postgres://app:xxxxx@db:5432/app?sslmode=disable"},
		{"call http://a:b@h/x then https://c:d@k/", "call http://a:xxxxx@h/x then https://c:xxxxx@k/"},
		{"host=db user=app password=s3cret dbname=app", "host=db user=app password=xxxxx dbname=app"},
		{"host=db password='s3 cret' dbname=app", "host=db password=xxxxx dbname=app"},
		{"http://user@h/x", "http://user@h/x"},
		{"http://h/x?q=a:b@c", "http://h/x?q=a:b@c"},
		{"plain text: no URL", "plain text: no URL"},
		{"http://u:xxxxx@h/x", "http://u:xxxxx@h/x"},
	}
	for _, tc := range tests {
		if got := redactString(tc.in); got != tc.want {
			t.Errorf("redactString(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := hasRedaction(map[string]any{"k": redactString(tc.in)}); got != strings.Contains(tc.want, "xxxxx") {
			t.Errorf("hasRedaction(%q) = %v", tc.want, got)
		}
	}
}

// TestJSONFunctionKeepsALabelOneString is the injection case of a JSON
// body: pasted into quotes, the label adds a key; through json, the body
// is valid JSON with the label as one string.
func TestJSONFunctionKeepsALabelOneString(t *testing.T) {
	evil := `s6","admin":true,"x":"`
	data := TemplateData{Labels: map[string]string{"target": evil}}
	tests := []struct {
		name, body string
		safe       bool
	}{
		{"pasted into quotes", `{"t":"{{ .Labels.target }}"}`, false},
		{"json function", `{"t":{{ json .Labels.target }}}`, true},
		{"json in a pipeline", `{"t":{{ .Labels.target | json }}}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := renderParams(map[string]any{"body": tc.body}, data)
			if err != nil {
				t.Fatal(err)
			}
			body := out["body"].(string)
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("rendered body %s is not JSON: %v", body, err)
			}
			safe := len(got) == 1 && got["t"] == evil
			if safe != tc.safe {
				t.Errorf("rendered %s: one key holding the label = %v, want %v", body, safe, tc.safe)
			}
		})
	}
}

// secretURLServer is a real HTTP server that records the basic-auth
// password of each request.
type secretURLServer struct {
	*httptest.Server
	mu        sync.Mutex
	passwords []string
}

func newSecretURLServer(t *testing.T) *secretURLServer {
	s := &secretURLServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		s.mu.Lock()
		s.passwords = append(s.passwords, pw)
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *secretURLServer) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.passwords...)
}

// secretStep is a gated http step whose URL carries a password.
func secretStep(srv *secretURLServer, password string) config.Step {
	u := strings.Replace(srv.URL, "http://", "http://drguard:"+password+"@", 1) + "/hook/{{ .Labels.target }}"
	return config.Step{Name: "call", Action: "http", Params: map[string]any{"url": u, "method": "GET"},
		Approval: config.Approval{Required: true, Expires: model.Duration(10 * time.Minute)}}
}

// TestURLPasswordNeverJournaled: a step whose URL holds user:password@
// journals, shows for approval and hashes the URL redacted, and still
// calls the server with the password, rendered again from the policy.
func TestURLPasswordNeverJournaled(t *testing.T) {
	const password = "pw-0f5a9c1e"
	srv := newSecretURLServer(t)
	h := newHarness(t)
	h.run(defaultConfig(config.Policy{Name: "hook", Matchers: []string{`scenario="db_down"`}, Steps: []config.Step{secretStep(srv, password)}}))
	h.fire("fp-1", labelsFor("db-1"))
	h.waitRun("fp-1", store.RunAwaitingApproval)
	pending, err := h.eng.PendingApprovals()
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending approvals = %v (%v), want 1", pending, err)
	}
	want := strings.Replace(srv.URL, "http://", "http://drguard:xxxxx@", 1) + "/hook/db-1"
	if got := pending[0].Params["url"]; got != want {
		t.Errorf("the approval shows url %v, want %s", got, want)
	}
	if _, err := h.eng.Decide(context.Background(), pending[0].ID, approver); err != nil {
		t.Fatal(err)
	}
	run := h.waitRun("fp-1", store.RunSucceeded)
	if got := srv.got(); len(got) != 1 || got[0] != password {
		t.Fatalf("the server got passwords %q, want the real one once", got)
	}
	if run.Steps[0].Params["url"] != want {
		t.Errorf("the journaled url is %v, want %s", run.Steps[0].Params["url"], want)
	}
	inc, runs := h.incident("fp-1")
	shown, err := json.Marshal(struct {
		Incident store.Incident
		Runs     []store.Run
	}{inc, runs})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(shown, []byte(password)) {
		t.Errorf("the incident and its runs show the password:\n%s", shown)
	}
	h.close()
	journalHolds(t, h.dir, password, "/hook/db-1")
}

// TestChangedPolicyIsNotRenderedIntoAnApprovedStep: a step whose redacted
// params are rendered again from the policy when it starts fails, with
// nothing sent, when the policy's step (here its URL, after a restart)
// no longer renders what was journaled and approved.
func TestChangedPolicyIsNotRenderedIntoAnApprovedStep(t *testing.T) {
	srv := newSecretURLServer(t)
	other := newSecretURLServer(t)
	h := newHarness(t)
	cfg := defaultConfig(config.Policy{Name: "hook", Matchers: []string{`scenario="db_down"`}, Steps: []config.Step{secretStep(srv, "pw-1")}})
	h.run(cfg)
	h.fire("fp-1", labelsFor("db-1"))
	h.waitRun("fp-1", store.RunAwaitingApproval)
	pending, err := h.eng.PendingApprovals()
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending approvals = %v (%v), want 1", pending, err)
	}
	// drguard restarts with the step pointing at another server.
	h.stop()
	h.cfg.Policies[0].Steps[0] = secretStep(other, "pw-2")
	h.restart()
	if _, err := h.eng.Decide(context.Background(), pending[0].ID, approver); err != nil {
		t.Fatal(err)
	}
	run := h.waitRun("fp-1", store.RunFailed)
	if !strings.Contains(run.Steps[0].Reason, "changed since it was planned") {
		t.Errorf("step reason %q", run.Steps[0].Reason)
	}
	if n := len(srv.got()) + len(other.got()); n != 0 {
		t.Errorf("%d requests were sent, want none", n)
	}
}

// journalHolds fails if a file of the journal's directory holds secret,
// and checks that it holds control (so that the search can find text).
func journalHolds(t *testing.T, dir, secret, control string) {
	t.Helper()
	found := false
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("journal file %s holds the password", path)
		}
		found = found || bytes.Contains(raw, []byte(control))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("no journal file holds %q: the search cannot see the journal", control)
	}
}

package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestPostgresJournalOutage runs drguard on a PostgreSQL journal and stops
// the journal's server: intake answers 503 (Alertmanager retries) and
// /readyz says why, drguard keeps running, and once the server is back it
// takes webhooks again and journals every alert answered 200.
func TestPostgresJournalOutage(t *testing.T) {
	pg := testharness.Postgres(t, testharness.NoReplica())
	pg.CreateDB("journal")
	a := startApp(t, "storage: {type: postgres, dsn: '"+pg.PrimaryDSN("journal")+"'}\n")
	post := func(fp string) (int, http.Header) {
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/v1/alerts",
			strings.NewReader(string(webhook("firing", time.Now(), map[string]string{"alertname": "X", "fp": fp}))))
		req.Header.Set("Authorization", "Bearer "+webhookToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if code, _ := post("before"); code != http.StatusOK {
		t.Fatalf("webhook with the journal up: %d", code)
	}

	pg.StopPrimary("immediate")
	if code, h := post("during"); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("webhook with the journal down: %d (Retry-After %q), want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	if code, body := do(t, http.MethodGet, a.URL+"/readyz", "", nil); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "postgres journal") {
		t.Fatalf("readyz with the journal down: %d %s", code, body)
	}
	if code, _ := do(t, http.MethodGet, a.URL+"/healthz", "", nil); code != http.StatusOK {
		t.Fatalf("healthz with the journal down: %d, want 200 (alive)", code)
	}
	if got := metric(t, a.Registry, "drguard_alerts_received_total", "status", "unavailable"); got != 1 {
		t.Errorf("alerts_received_total{status=unavailable} = %v, want 1", got)
	}

	pg.StartPrimary()
	testharness.Eventually(t, 15*time.Second, "readyz after the journal came back", func() bool {
		code, _ := do(t, http.MethodGet, a.URL+"/readyz", "", nil)
		return code == http.StatusOK
	})
	if code, _ := post("after"); code != http.StatusOK {
		t.Fatalf("webhook after the journal came back: %d", code)
	}
	testharness.Eventually(t, 15*time.Second, "incidents for both alerts answered 200", func() bool {
		var list struct {
			Incidents []struct{ Fingerprint string }
		}
		getJSON(t, a.URL+"/api/v1/incidents", &list)
		raw, _ := json.Marshal(list)
		return len(list.Incidents) == 2 && strings.Contains(string(raw), "before") && strings.Contains(string(raw), "after")
	})
}

// TestCheckRefusesAJournalInAGuardedDatabase checks that drguard check
// exits 1, naming the file and line of the journal's DSN, when the journal
// would live in the database a probe guards.
func TestCheckRefusesAJournalInAGuardedDatabase(t *testing.T) {
	file := filepath.Join(t.TempDir(), "drguard.yaml")
	cfg := baseConfig + `storage:
  type: postgres
  dsn: postgres://drguard@db.example:5432/app
targets:
  postgres:
    - {name: app-db, service: demo, dsn: "postgres://monitor@db.example/app"}
probes:
  - {name: app-db-up, type: postgres, target: app-db, scenario: db_down, service: demo}
`
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("check", "--config.file="+file)
	want := fmt.Sprintf(`error: %s:%d: storage.dsn: the journal's database app on db.example:5432 is also the database of postgres target "app-db" (used by probe "app-db-up")`,
		file, strings.Count(baseConfig, "\n")+3)
	if code != ExitFail || !strings.Contains(errOut, want) {
		t.Fatalf("check exited %d, want 1 with\n%s\ngot:\n%s%s", code, want, out, errOut)
	}
}

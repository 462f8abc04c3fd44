package app

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestResendsSurviveKill9 sends a firing alert and, at once, re-sends of
// it, identical or changed, then kills drguard with SIGKILL right after
// the last 200 and restarts it on the same journal: what each 200
// acknowledged is in the journal. Identical re-sends are acknowledged from
// the intake's index of durable alerts without a write; a change
// (resolved, a new label, a new startsAt) must be journaled all the same.
func TestResendsSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	cfgFile, storage := filepath.Join(dir, "drguard.yaml"), filepath.Join(dir, "data")
	if err := os.WriteFile(cfgFile, []byte(baseConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	labels := func(fp string, extra ...string) map[string]string {
		l := map[string]string{"alertname": "Resend", "service": "demo", "target": fp, "fp": fp}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	cases := []struct {
		name  string
		fp    string
		hooks [][]byte // all sent before the kill, the first opening the incident
		check func(got []store.Incident) bool
	}{
		{
			name: "identical re-sends",
			fp:   "same",
			hooks: [][]byte{webhook("firing", start, labels("same")), webhook("firing", start, labels("same")),
				webhook("firing", start, labels("same"))},
			check: func(got []store.Incident) bool {
				return len(got) == 1 && got[0].AlertStatus == "firing" && got[0].State == store.IncidentOpen
			},
		},
		{
			name: "resolved",
			fp:   "resolved",
			hooks: [][]byte{webhook("firing", start, labels("resolved")), webhook("firing", start, labels("resolved")),
				webhook("resolved", start, labels("resolved"))},
			check: func(got []store.Incident) bool {
				return len(got) == 1 && got[0].AlertStatus == "resolved"
			},
		},
		{
			// The engine keeps an incident's first labels; a repeat moves
			// its LastSeen and repeat count, which is how the journaled
			// re-send shows.
			name:  "new label",
			fp:    "label",
			hooks: [][]byte{webhook("firing", start, labels("label")), webhook("firing", start, labels("label", "severity", "page"))},
			check: func(got []store.Incident) bool {
				return len(got) == 1 && got[0].Repeats == 1 && got[0].LastSeen.After(got[0].FirstSeen)
			},
		},
		{
			name: "new startsAt",
			fp:   "start",
			hooks: [][]byte{webhook("firing", start, labels("start")), webhook("firing", start, labels("start")),
				webhook("firing", start.Add(time.Hour), labels("start"))},
			check: func(got []store.Incident) bool {
				return len(got) == 2 && !got[0].StartsAt.Equal(got[1].StartsAt)
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := startDaemon(t, cfgFile, storage)
			client := &http.Client{Timeout: 10 * time.Second}
			for i, body := range c.hooks {
				req, _ := http.NewRequest(http.MethodPost, d.URL+"/api/v1/alerts", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+webhookToken)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("webhook %d: %s", i, resp.Status)
				}
			}
			if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = d.cmd.Wait()
			d2 := startDaemon(t, cfgFile, storage)
			var mine []store.Incident
			testharness.Eventually(t, 30*time.Second, "the acknowledged alerts to be journaled", func() bool {
				all, _ := pageAll(t, d2.URL, nil)
				mine = mine[:0]
				for _, in := range all {
					if in.Fingerprint == c.fp {
						mine = append(mine, in)
					}
				}
				return c.check(mine)
			})
			d2.kill()
		})
	}
}

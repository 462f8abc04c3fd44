package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// haQuickStep leaves one mark per execution.
const haQuickStep = `
policies:
  - name: quick
    matchers: ['alertname="HAQuick"']
    steps:
      - name: mark
        action: exec
        params:
          argv: ["mktemp", "-p", %q, "ran-{{ .Labels.target }}.XXXXXX"]
`

// TestHAAlertmanagerToTwoReplicasThroughKills has a real Alertmanager send
// every notification to two replicas (two receivers, as an HA pair of
// Alertmanagers does) while the leader is killed with SIGKILL three times
// and restarted: Alertmanager retries what was not answered 200, so every
// alert it was given ends up in the journal, once (one incident whatever
// the copies), and each matching step ran exactly once (one mark).
func TestHAAlertmanagerToTwoReplicasThroughKills(t *testing.T) {
	c := newHACluster(t, haQuickStep)
	receiver := func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("drguard-%d", i), "webhook_configs": []any{map[string]any{
			"url": c.url(i) + "/api/v1/alerts", "send_resolved": true,
			"http_config": map[string]any{"authorization": map[string]any{"type": "Bearer", "credentials": webhookToken}},
		}}}
	}
	amConfig, _ := json.Marshal(map[string]any{
		"route": map[string]any{"receiver": "drguard-0", "group_by": []string{"alertname", "target"},
			"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h",
			"routes": []any{map[string]any{"receiver": "drguard-0", "continue": true}, map[string]any{"receiver": "drguard-1"}}},
		"receivers": []any{receiver(0), receiver(1)},
	})
	am := testharness.AlertmanagerWithConfig(t, amConfig)
	c.start(0, "")
	c.start(1, "")
	ctx := context.Background()
	var targets []string
	for wave := range 3 {
		lead := c.waitLeader(20 * time.Second)
		var alerts []testharness.Alert
		for i := range 10 {
			tg := fmt.Sprintf("w%d-%d", wave, i)
			targets = append(targets, tg)
			alerts = append(alerts, testharness.Alert{Labels: map[string]string{"alertname": "HAQuick", "target": tg}, StartsAt: haStart})
		}
		if err := am.PostAlerts(ctx, alerts); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
		c.kill(lead)
		t.Logf("wave %d: killed the leader, replica %d", wave, lead)
		c.start(lead, "")
	}
	lead := c.waitLeader(20 * time.Second)
	runs := map[string]*store.Run{}
	testharness.Eventually(t, 60*time.Second, "every alert's run to end", func() bool {
		incidents := c.incidents(lead, "HAQuick")
		for _, tg := range targets {
			if _, ok := incidents[tg]; !ok {
				return false
			}
			if runs[tg] == nil || runs[tg].Active() {
				_, runs[tg] = c.runOf(lead, "HAQuick", tg)
			}
			if runs[tg] == nil || runs[tg].Active() {
				return false
			}
		}
		return true
	})
	interrupted := 0
	for _, tg := range targets {
		run, marks := runs[tg], c.marks("ran-"+tg+".")
		switch {
		case marks > 1:
			t.Errorf("%s: its step ran %d times", tg, marks)
		case run.State == store.RunInterrupted:
			interrupted++
		case run.State != store.RunSucceeded || marks != 1:
			t.Errorf("%s: run %s with %d marks, want succeeded with 1", tg, run.State, marks)
		}
	}
	t.Logf("%d alerts through Alertmanager to two replicas, 3 leaders killed: every alert journaled once, %d runs interrupted by a kill, none run twice",
		len(targets), interrupted)
}

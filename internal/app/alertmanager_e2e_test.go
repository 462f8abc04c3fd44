package app

import (
	"context"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestRealAlertmanagerResendsRunOnce wires a real Alertmanager to drguard
// with bearer credentials. Alertmanager re-sends the group every second
// for 30 s; the policy's exec step runs exactly once, and the resolved
// notification closes the incident and starts nothing.
func TestRealAlertmanagerResendsRunOnce(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, false))
	am := testharness.Alertmanager(t, a.URL+"/api/v1/alerts", webhookToken,
		testharness.AMGroupInterval(500*time.Millisecond), testharness.AMRepeatInterval(500*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	alert := testharness.Alert{
		Labels:      map[string]string{"alertname": "DemoDatabaseDown", "service": "demo", "scenario": "database_failure", "target": "pg-am"},
		Annotations: map[string]string{"summary": "pg-am is down"},
		StartsAt:    time.Now().UTC(),
	}
	if err := am.PostAlerts(ctx, []testharness.Alert{alert}); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 20*time.Second, "the first delivery to run the step", func() bool { return executions(t, out) == 1 })

	incident := func() store.Incident {
		var list struct{ Incidents []store.Incident }
		getJSON(t, a.URL+"/api/v1/incidents", &list)
		if len(list.Incidents) != 1 {
			t.Fatalf("%d incidents for one alert", len(list.Incidents))
		}
		return list.Incidents[0]
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if n := executions(t, out); n != 1 {
			t.Fatalf("%d executions while Alertmanager re-sends, want 1", n)
		}
		time.Sleep(500 * time.Millisecond)
	}
	in := incident()
	if in.Repeats < 20 {
		t.Fatalf("only %d repeats in 30 s: Alertmanager did not re-send every second, so the test proves nothing", in.Repeats)
	}
	t.Logf("%d re-sends in 30 s, one run", in.Repeats)

	if err := am.ResolveAlerts(ctx, []testharness.Alert{alert}); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 20*time.Second, "the resolved notification to close the incident", func() bool {
		in = incident()
		return in.State == store.IncidentResolved && in.AlertStatus == "resolved"
	})
	time.Sleep(2 * time.Second)
	if n, runs := executions(t, out), len(incident().RunIDs); n != 1 || runs != 1 {
		t.Fatalf("after resolution: %d executions, %d runs; want 1 and 1", n, runs)
	}
}

package detect

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// TestWatchdogMonitorAcrossLeaders: a watchdog never seen is missing
// missing_after after drguard began expecting it; a heartbeat resolves
// the detection, and a monitor of a later term (another leader) resolves
// what an earlier one raised, with the same fingerprint and start.
func TestWatchdogMonitorAcrossLeaders(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wds, err := CompileWatchdogs([]config.Watchdog{{Name: "primary", Matchers: []string{`alertname="Watchdog"`, `region="a"`},
		RepeatInterval: model.Duration(time.Minute), MissingAfter: model.Duration(7 * time.Minute), Scenario: "region_failure",
		Severity: "critical", Labels: map[string]string{"region": "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := wds.Match(map[string]string{"alertname": "Watchdog", "region": "a"}); !ok || name != "primary" {
		t.Fatalf("Match = %q, %v", name, ok)
	}
	if _, ok := wds.Match(map[string]string{"alertname": "Watchdog", "region": "b"}); ok {
		t.Fatal("another region's watchdog matched")
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var got []Detection
	monitor := func() (*WatchdogMonitor, map[string]time.Time) {
		m, err := NewWatchdogMonitor(WatchdogMonitorOptions{Watchdogs: wds, Store: st, Journal: st, Now: func() time.Time { return now },
			Emit: func(_ context.Context, d Detection) error { mu.Lock(); got = append(got, d); mu.Unlock(); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		return m, map[string]time.Time{}
	}
	check := func(m *WatchdogMonitor, emitted map[string]time.Time) {
		t.Helper()
		if err := m.check(context.Background(), wds.list[0], emitted); err != nil {
			t.Fatal(err)
		}
	}
	first, emitted := monitor()
	check(first, emitted) // starts expecting it
	now = now.Add(6 * time.Minute)
	check(first, emitted)
	if len(got) != 0 {
		t.Fatalf("missing after 6m of 7: %v", got)
	}
	now = now.Add(2 * time.Minute)
	check(first, emitted)
	check(first, emitted) // once per term
	if len(got) != 1 || got[0].Status != StatusFiring || got[0].Labels[LabelAlertName] != AlertNameWatchdogMissing ||
		got[0].Labels["region"] != "a" || got[0].Labels[LabelScenario] != "region_failure" || !got[0].StartsAt.Equal(now.Add(-8*time.Minute)) {
		t.Fatalf("after 8m never seen: %+v", got)
	}
	missing := got[0]

	// A new leader's monitor emits the open detection once more (a repeat
	// for the journal), then resolves it when the watchdog is back.
	second, emitted2 := monitor()
	check(second, emitted2)
	if len(got) != 2 || got[1].Fingerprint != missing.Fingerprint || !got[1].StartsAt.Equal(missing.StartsAt) {
		t.Fatalf("the next term's detection %+v, want the same as %+v", got[len(got)-1], missing)
	}
	now = now.Add(time.Minute)
	err = st.Update(func(tx *store.Tx) error {
		w, err := tx.Watchdog("primary")
		w.LastSeen = now
		if err == nil {
			err = tx.PutWatchdog(w)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	check(second, emitted2)
	last := got[len(got)-1]
	if last.Status != StatusResolved || last.Fingerprint != missing.Fingerprint || !last.StartsAt.Equal(missing.StartsAt) || !last.EndsAt.Equal(now) {
		t.Fatalf("after the heartbeat: %+v, want the resolution of %s@%s", last, missing.Fingerprint, missing.StartsAt)
	}
	n := len(got)
	now = now.Add(3 * time.Minute)
	check(second, emitted2)
	if len(got) != n {
		t.Fatalf("3m after a heartbeat: %v", got[n:])
	}
}

package remediate

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// TestWatchdogNotificationsAreHeartbeats: a configured watchdog's firing
// notifications move its last-seen time and open no incident, however
// often they come; a resolved one is no heartbeat.
func TestWatchdogNotificationsAreHeartbeats(t *testing.T) {
	h := newHarness(t)
	cfg := defaultConfig()
	cfg.Watchdogs = []config.Watchdog{{Name: "primary", Matchers: []string{`alertname="Watchdog"`},
		RepeatInterval: model.Duration(time.Minute), MissingAfter: model.Duration(7 * time.Minute)}}
	h.run(cfg)
	watchdog := map[string]string{"alertname": "Watchdog", "region": "a"}
	state := func() store.WatchdogState {
		var w store.WatchdogState
		if err := h.store.View(func(tx *store.Tx) (err error) { w, err = tx.Watchdog("primary"); return err }); err != nil {
			t.Fatal(err)
		}
		return w
	}
	for range 20 {
		h.clock.Advance(time.Minute)
		h.fire("wd", watchdog)
	}
	last := h.clock.Now()
	h.eventually("20 heartbeats", func() bool { return state().Notifications == 20 })
	if w := state(); !w.LastSeen.Equal(last) {
		t.Errorf("last seen %s, want %s", w.LastSeen, last)
	}
	h.clock.Advance(time.Minute)
	h.alert(detect.StatusResolved, "wd", t0, watchdog)
	h.fire("other", labelsFor("db-1"))
	h.eventually("the next alert", func() bool { return h.hasIncident("other") })
	if w := state(); !w.LastSeen.Equal(last) || w.Notifications != 20 {
		t.Errorf("after a resolved notification: %+v, want it unchanged", w)
	}
	if h.hasIncident("wd") {
		t.Error("a watchdog notification opened an incident")
	}
}

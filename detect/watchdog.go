package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// Dead-man switches. A monitored region's Prometheus fires an alert that
// always fires (the Watchdog convention); Alertmanager re-sends it every
// repeat_interval of its route, to drguard among others. The engine
// records each notification of a configured watchdog as a heartbeat (the
// watchdog's last-seen time), never as an incident; the WatchdogMonitor
// raises a detection — alertname DrguardWatchdogMissing, the watchdog's
// scenario (region_failure by default) — when none has arrived for
// missing_after, and resolves it when one arrives again.

// SourceWatchdog is the source of the detections of missing watchdogs.
const SourceWatchdog Source = "watchdog"

// Labels of a missing watchdog's detection.
const (
	AlertNameWatchdogMissing = "DrguardWatchdogMissing"
	LabelWatchdog            = "watchdog"
)

// Watchdogs recognises the notifications of the configured watchdogs.
type Watchdogs struct {
	list []watchdog
}

type watchdog struct {
	cfg         config.Watchdog
	matchers    []*labels.Matcher
	fingerprint string
}

// CompileWatchdogs parses the watchdogs' matchers. The configuration has
// its defaults applied.
func CompileWatchdogs(ws []config.Watchdog) (*Watchdogs, error) {
	out := &Watchdogs{}
	for _, w := range ws {
		c := watchdog{cfg: w, fingerprint: watchdogFingerprint(w.Name)}
		for _, s := range w.Matchers {
			ms, err := labels.ParseMatchers(s)
			if err != nil {
				return nil, fmt.Errorf("watchdog %q: matcher %q: %w", w.Name, s, err)
			}
			c.matchers = append(c.matchers, ms...)
		}
		if len(c.matchers) == 0 || w.MissingAfter <= 0 {
			return nil, fmt.Errorf("watchdog %q: no matchers, or missing_after unset (apply the configuration's defaults)", w.Name)
		}
		out.list = append(out.list, c)
	}
	return out, nil
}

// Len is how many watchdogs there are.
func (w *Watchdogs) Len() int {
	if w == nil {
		return 0
	}
	return len(w.list)
}

// Match returns the name of the first watchdog whose matchers all match
// the labels of a notification.
func (w *Watchdogs) Match(ls map[string]string) (string, bool) {
	if w == nil {
		return "", false
	}
next:
	for _, c := range w.list {
		for _, m := range c.matchers {
			if !m.Matches(ls[m.Name]) {
				continue next
			}
		}
		return c.cfg.Name, true
	}
	return "", false
}

func watchdogFingerprint(name string) string {
	sum := sha256.Sum256([]byte("watchdog\x00" + name))
	return hex.EncodeToString(sum[:8])
}

// missing builds the detection of a watchdog silent since since: firing,
// or resolved when it was seen again at back.
func (c watchdog) missing(since, back time.Time) Detection {
	w := c.cfg
	ls := map[string]string{LabelAlertName: AlertNameWatchdogMissing, LabelWatchdog: w.Name,
		LabelScenario: w.Scenario, LabelSeverity: w.Severity}
	if w.Service != "" {
		ls[LabelService] = w.Service
	}
	for k, v := range w.Labels {
		ls[k] = v
	}
	d := Detection{Source: SourceWatchdog, Fingerprint: c.fingerprint, Status: StatusFiring, StartsAt: since, Labels: ls,
		Annotations: map[string]string{
			"summary": fmt.Sprintf("watchdog %s has not arrived for %s (last seen %s)", w.Name, w.MissingAfter, seenAt(since)),
			"description": fmt.Sprintf("No notification matching %v has reached drguard since %s: the region's Prometheus, its Alertmanager path or the region itself is gone.",
				w.Matchers, seenAt(since)),
		}}
	if !back.IsZero() {
		d.Status, d.EndsAt = StatusResolved, back
		d.Annotations = map[string]string{"summary": fmt.Sprintf("watchdog %s is back (seen %s)", w.Name, seenAt(back))}
	}
	return d
}

func seenAt(t time.Time) string { return t.UTC().Format(time.RFC3339) }

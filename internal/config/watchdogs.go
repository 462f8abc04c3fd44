package config

import (
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// Defaults of watchdogs. Alertmanager re-sends an always-firing alert
// every repeat_interval of its route; a dead-man switch that expects it
// too eagerly flaps (a 1-minute check was too tight for peers; 2 minutes
// with 5 minutes of grace held), so missing_after defaults to twice the
// repeat interval plus five minutes.
const (
	DefaultWatchdogRepeatInterval = model.Duration(time.Minute)
	DefaultWatchdogGrace          = model.Duration(5 * time.Minute)
	DefaultWatchdogScenario       = "region_failure"
	DefaultWatchdogSeverity       = "critical"
	// minWatchdogGrace is the least grace beyond two repeat intervals that
	// check accepts without a warning.
	minWatchdogGrace = model.Duration(time.Minute)
)

// Watchdog is a dead-man switch: drguard expects an always-firing alert
// (Prometheus' Watchdog convention) matching Matchers from a monitored
// region, through Alertmanager, and raises a detection (alertname
// DrguardWatchdogMissing) when none has arrived for MissingAfter. The
// detection resolves when the watchdog comes back.
type Watchdog struct {
	Name string `yaml:"name" json:"name"`
	// Matchers (Alertmanager syntax) select the watchdog's notifications,
	// e.g. alertname="Watchdog", region="us-east-1".
	Matchers []string `yaml:"matchers" json:"matchers"`
	// RepeatInterval is how often Alertmanager re-sends the watchdog: the
	// repeat_interval of the route that sends it to drguard. Default 1m.
	RepeatInterval model.Duration `yaml:"repeat_interval" json:"repeat_interval"`
	// MissingAfter is how long without a notification means the region is
	// lost. Default twice the repeat interval plus 5m.
	MissingAfter model.Duration `yaml:"missing_after" json:"missing_after"`
	// Scenario, Service and Severity label the detection; Labels adds
	// more (the region, say) for policies to match. Scenario defaults to
	// region_failure, severity to critical.
	Scenario string            `yaml:"scenario" json:"scenario"`
	Service  string            `yaml:"service" json:"service"`
	Severity string            `yaml:"severity" json:"severity"`
	Labels   map[string]string `yaml:"labels" json:"labels"`
}

func applyWatchdogDefaults(c *Config) {
	for i := range c.Watchdogs {
		w := &c.Watchdogs[i]
		setDuration(&w.RepeatInterval, DefaultWatchdogRepeatInterval)
		setDuration(&w.MissingAfter, 2*w.RepeatInterval+DefaultWatchdogGrace)
		setString(&w.Scenario, DefaultWatchdogScenario)
		setString(&w.Severity, DefaultWatchdogSeverity)
	}
}

// watchdogs checks each watchdog, and warns of a missing_after so tight
// that one late notification raises a region failure.
func (v *validator) watchdogs() {
	seen := map[string]string{}
	for i, w := range v.c.Watchdogs {
		path := indexPath("watchdogs", i)
		v.name(seen, "watchdog", path, w.Name)
		if len(w.Matchers) == 0 {
			v.ps.errorf(joinPath(path, "matchers"), "at least one matcher is required, e.g. alertname=\"Watchdog\"")
		}
		for j, m := range w.Matchers {
			if _, err := labels.ParseMatchers(m); err != nil {
				v.ps.errorf(indexPath(joinPath(path, "matchers"), j), "invalid matcher %q: %v", m, err)
			}
		}
		for k := range w.Labels {
			if !labelNameRE.MatchString(k) {
				v.ps.errorf(joinPath(joinPath(path, "labels"), k), "%q is not a valid label name", k)
			}
		}
		v.positive(joinPath(path, "repeat_interval"), w.RepeatInterval)
		switch {
		case w.MissingAfter <= w.RepeatInterval:
			v.ps.errorf(joinPath(path, "missing_after"), "%s is not longer than the repeat interval %s: every notification would arrive late", w.MissingAfter, w.RepeatInterval)
		case w.MissingAfter < 2*w.RepeatInterval+minWatchdogGrace:
			v.ps.warnf(joinPath(path, "missing_after"), "%s is too tight for a repeat interval of %s: one delayed or lost notification (an Alertmanager retry or restart) raises a region failure; use at least 2 × repeat_interval + %s (default 2 × repeat_interval + %s)",
				w.MissingAfter, w.RepeatInterval, minWatchdogGrace, DefaultWatchdogGrace)
		}
		if w.Service != "" {
			v.service(path, "watchdog", w.Name, w.Service)
		}
	}
}

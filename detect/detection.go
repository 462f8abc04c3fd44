// Package detect defines what drguard notices: detections from Alertmanager
// webhooks and from its own probes, and the structured results probes return.
package detect

import (
	"strings"
	"time"
)

// Source says where a detection came from.
type Source string

// The detection sources drguard knows.
const (
	SourceAlertmanager Source = "alertmanager"
	SourceProbe        Source = "probe"
)

// Status is the state of the condition a detection reports.
type Status string

// A detection is either firing or resolved, as in Alertmanager.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Well-known label names that policies, incidents and metrics rely on.
const (
	LabelAlertName = "alertname"
	LabelScenario  = "scenario"
	LabelService   = "service"
	LabelTarget    = "target"
	LabelSeverity  = "severity"
	LabelProbe     = "probe"
)

// Detection is one observation that something is wrong (firing) or no longer
// wrong (resolved). Repeats of the same condition share Fingerprint and
// StartsAt, which together form its Key.
type Detection struct {
	Source       Source            `json:"source"`
	Fingerprint  string            `json:"fingerprint"`
	Status       Status            `json:"status"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitempty"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	// Evidence carries a probe's result; it is nil for Alertmanager alerts.
	Evidence *Result `json:"evidence,omitempty"`
}

// Key identifies the incident a detection belongs to: the fingerprint plus
// the start time, so that a condition which resolves and fires again later
// opens a new incident while re-sent notifications do not.
func (d Detection) Key() string {
	return Key(d.Fingerprint, d.StartsAt)
}

// Key builds a detection key from a fingerprint and a start time.
func Key(fingerprint string, startsAt time.Time) string {
	return fingerprint + "@" + startsAt.UTC().Format(time.RFC3339Nano)
}

// Label returns the value of the named label, or "" when it is absent.
func (d Detection) Label(name string) string { return d.Labels[name] }

// Summary returns a one-line description for humans: the summary annotation
// when present, otherwise the alert name and target.
func (d Detection) Summary() string {
	if s := d.Annotations["summary"]; s != "" {
		return s
	}
	parts := []string{d.Labels[LabelAlertName]}
	if t := d.Labels[LabelTarget]; t != "" {
		parts = append(parts, "on "+t)
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

// Package metrics defines every drguard metric in one place, and computes
// the recovery objectives' metrics (RPO exposure, RTO estimate) from the
// facts other packages report (Objectives). Metrics are built from an
// injected prometheus.Registerer; library code never touches the global
// registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every drguard metric.
const Namespace = "drguard"

// Intake holds the webhook intake metrics.
type Intake struct {
	// AlertsReceived counts alerts by outcome: firing, resolved, or the
	// reason they were refused (unauthorized, malformed, too_large,
	// unavailable).
	AlertsReceived *prometheus.CounterVec
}

// NewIntake registers the intake metrics with reg.
func NewIntake(reg prometheus.Registerer) *Intake {
	m := &Intake{
		AlertsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "alerts_received_total",
			Help: "Alerts received on the webhook, by status (firing, resolved) or refusal reason.",
		}, []string{"status"}),
	}
	reg.MustRegister(m.AlertsReceived)
	return m
}

// Remediation holds the engine's metrics.
type Remediation struct {
	Detections       *prometheus.CounterVec
	IncidentsOpen    *prometheus.GaugeVec
	Steps            *prometheus.CounterVec
	PendingApprovals prometheus.Gauge
	Paused           prometheus.Gauge
}

// Results of remediation steps as counted in drguard_remediation_steps_total.
const (
	ResultSucceeded   = "succeeded"
	ResultFailed      = "failed"
	ResultDryRun      = "dry_run"
	ResultRejected    = "rejected"
	ResultExpired     = "expired"
	ResultObsolete    = "obsolete"
	ResultInterrupted = "interrupted"
	// Results for steps a guardrail stopped.
	ResultBlockedCooldown = "blocked_cooldown"
	ResultBlockedMaxRuns  = "blocked_max_runs"
	ResultBlockedBudget   = "blocked_budget"
	ResultBlockedPaused   = "blocked_paused"
	ResultBlockedActive   = "blocked_active_run"
)

// NewRemediation registers the remediation metrics with reg.
func NewRemediation(reg prometheus.Registerer) *Remediation {
	m := &Remediation{
		Detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "detections_total",
			Help: "Detections processed (new incidents), by scenario and source.",
		}, []string{"scenario", "source"}),
		IncidentsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "incidents_open",
			Help: "Open incidents by service and scenario.",
		}, []string{"service", "scenario"}),
		Steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "remediation_steps_total",
			Help: "Remediation steps by policy, action and result (succeeded, failed, dry_run, rejected, expired, obsolete, interrupted, blocked_*).",
		}, []string{"policy", "action", "result"}),
		PendingApprovals: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "remediation_pending_approvals",
			Help: "Gated steps waiting for a human decision.",
		}),
		Paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "remediation_paused",
			Help: "1 while the global remediation kill switch is on.",
		}),
	}
	reg.MustRegister(m.Detections, m.IncidentsOpen, m.Steps, m.PendingApprovals, m.Paused)
	return m
}

// NewBuildInfo registers drguard_build_info with version labels, always 1.
func NewBuildInfo(reg prometheus.Registerer, version, revision, goVersion string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "drguard build information; always 1.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(version, revision, goVersion).Set(1)
	reg.MustRegister(g)
}

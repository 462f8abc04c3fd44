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
	// Detections and IncidentsOpen carry alert labels (scenario,
	// service): their distinct values are capped at MaxLabelValues.
	Detections       *CappedCounterVec
	IncidentsOpen    *CappedGaugeVec
	Steps            *prometheus.CounterVec
	PendingApprovals prometheus.Gauge
	Paused           prometheus.Gauge
	// Runs counts runs by policy and final state.
	Runs *prometheus.CounterVec
	// RunsActive is the runs pending, running or awaiting approval.
	RunsActive prometheus.Gauge
	// Approvals counts approvals by final state.
	Approvals *prometheus.CounterVec
	// Retries counts runs queued again, after a backoff, because they
	// could not advance (the journal could not be written, say).
	Retries prometheus.Counter
	// TransitionsRefused counts moves the state machine refused.
	TransitionsRefused prometheus.Counter
	// StepRecordDelay is how long a step's outcome took to become durable
	// in the journal after the action (and its verification) returned.
	StepRecordDelay prometheus.Histogram
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
		Detections: cappedCounter(reg, prometheus.CounterOpts{
			Namespace: Namespace, Name: "detections_total",
			Help: "Detections processed (new incidents), by scenario and source.",
		}, []string{"scenario", "source"}, "scenario"),
		IncidentsOpen: cappedGauge(reg, prometheus.GaugeOpts{
			Namespace: Namespace, Name: "incidents_open",
			Help: "Open incidents by service and scenario.",
		}, []string{"service", "scenario"}, "service", "scenario"),
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
	m.Runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "remediation_runs_total",
		Help: "Remediation runs that ended, by policy and result (succeeded, failed, rejected, expired, obsolete, interrupted, dry_run, blocked).",
	}, []string{"policy", "result"})
	m.RunsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "remediation_runs_active",
		Help: "Remediation runs that have not ended: pending, running or awaiting approval.",
	})
	m.Approvals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "remediation_approvals_total",
		Help: "Approvals of gated steps that were decided, by result (approved, rejected, expired, obsolete).",
	}, []string{"result"})
	m.Retries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "engine_retries_total",
		Help: "Runs queued again after a backoff because they could not advance (for instance, the journal could not be written).",
	})
	m.TransitionsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "engine_transitions_refused_total",
		Help: "Moves of runs, steps or approvals that the engine's state machine refused as illegal (a bug; see the audit log).",
	})
	m.StepRecordDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "engine_step_record_delay_seconds",
		Help:    "Time from a remediation step's action returning to its outcome being durable in the journal.",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2},
	})
	reg.MustRegister(m.Detections, m.IncidentsOpen, m.Steps, m.PendingApprovals, m.Paused,
		m.Runs, m.RunsActive, m.Approvals, m.Retries, m.TransitionsRefused, m.StepRecordDelay)
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

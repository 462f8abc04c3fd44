package metrics

import "github.com/prometheus/client_golang/prometheus"

// ResultBlockedStopped counts, in drguard_remediation_steps_total, the
// steps of runs that were stopped on request (an aborted drill).
const ResultBlockedStopped = "blocked_stopped"

// Drills holds the drill metrics. Their labels come from the
// configuration (drill names, scenarios, checklist items), never from
// alerts. They are set from the journal when drguard starts, and again at
// the end of every drill.
type Drills struct {
	// LastRun is when the drill last ended, whatever its result.
	LastRun *prometheus.GaugeVec
	// LastSuccess is when the drill last ended with every checklist item
	// passed; 0 when it never did.
	LastSuccess *prometheus.GaugeVec
	// Period is the drill's schedule (every); DRGuardDrillOverdue compares
	// the time since the last success with it.
	Period *prometheus.GaugeVec
	// RTO and RPO are what the last run of the drill measured; a drill
	// whose last run measured none has no series.
	RTO *prometheus.GaugeVec
	RPO *prometheus.GaugeVec
	// RTOObjective and RPOObjective are the objectives the drill is
	// measured against.
	RTOObjective *prometheus.GaugeVec
	RPOObjective *prometheus.GaugeVec
	// ChecklistOK is 1 for each item of the plan's testing checklist the
	// drill's last run passed, else 0.
	ChecklistOK *prometheus.GaugeVec
	// Running is 1 while the drill runs.
	Running *prometheus.GaugeVec
}

// NewDrills registers the drill metrics with reg.
func NewDrills(reg prometheus.Registerer) *Drills {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	m := &Drills{
		LastRun:      gauge("drill_last_run_timestamp_seconds", "When the drill last ended, whatever its result.", "drill", "scenario"),
		LastSuccess:  gauge("drill_last_success_timestamp_seconds", "When the drill last ended with every item of the testing checklist passed; 0 if never.", "drill", "scenario"),
		Period:       gauge("drill_period_seconds", "How often the drill is due (its schedule's every).", "drill", "scenario"),
		RTO:          gauge("drill_rto_seconds", "Recovery time the drill's last run achieved: injection to recovered_when passing.", "drill"),
		RPO:          gauge("drill_rpo_seconds", "Data loss the drill's last run measured from the heartbeat, in seconds.", "drill"),
		RTOObjective: gauge("drill_rto_objective_seconds", "The RTO objective the drill is measured against.", "drill"),
		RPOObjective: gauge("drill_rpo_objective_seconds", "The RPO objective the drill is measured against.", "drill"),
		ChecklistOK:  gauge("drill_checklist_ok", "1 if the drill's last run passed this item of the plan's testing checklist, else 0.", "drill", "item"),
		Running:      gauge("drill_running", "1 while the drill runs.", "drill"),
	}
	reg.MustRegister(m.LastRun, m.LastSuccess, m.Period, m.RTO, m.RPO, m.RTOObjective, m.RPOObjective, m.ChecklistOK, m.Running)
	return m
}

package dashboards

// drillsRow adds the drills' row: each drill's last RTO and RPO against
// its objective, how late it is against its schedule, and how much of the
// plan's testing checklist its last run passed.
func (b *builder) drillsRow() {
	objective := thresholds("green", 0.8, "orange", 1, "red")
	b.row("Drills")
	add(b, 6, 8, bargaugePanel("Drill RTO / objective",
		"Recovery time each drill's last run achieved (injection → recovered_when passing) as a fraction of the RTO objective. Above 100% DRGuardDrillMissedObjective fires.",
		"percentunit", objective,
		instant(`max by (drill) (drguard_drill_rto_seconds) / on (drill) max by (drill) (drguard_drill_rto_objective_seconds)`, "{{drill}}")))
	add(b, 6, 8, bargaugePanel("Drill RPO / objective",
		"Data each drill's last run lost, measured from the heartbeat, as a fraction of the RPO objective.",
		"percentunit", objective,
		instant(`max by (drill) (drguard_drill_rpo_seconds) / on (drill) max by (drill) (drguard_drill_rpo_objective_seconds)`, "{{drill}}")))
	add(b, 6, 8, bargaugePanel("Since the last passed drill / period",
		"Time since each drill last passed every checklist item, in periods of its schedule. Above 110% DRGuardDrillOverdue fires; a drill that never passed shows very large.",
		"percentunit", thresholds("green", 0.9, "orange", 1.1, "red"),
		instant(`(time() - max by (drill, scenario) (drguard_drill_last_success_timestamp_seconds)) / on (drill, scenario) max by (drill, scenario) (drguard_drill_period_seconds)`, "{{drill}}")))
	add(b, 6, 8, bargaugePanel("Checklist items passed",
		"How many of the plan's six testing-checklist items each drill's last run passed.",
		"short", thresholds("red", 6, "green"),
		instant(`sum by (drill) (max by (drill, item) (drguard_drill_checklist_ok))`, "{{drill}}")))
}

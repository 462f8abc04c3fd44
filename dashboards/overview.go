package dashboards

//lint:file-ignore SA1019 the classic dashboard model (schema v1) is the JSON every Grafana since 10.4 imports; the SDK deprecates it for dashboardv2, which only Grafana 12 reads.

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

// Overview is the DR overview: what would be lost and how long recovery
// would take right now, against the objectives, and why.
func Overview() (dashboard.Dashboard, error) {
	b := newDashboard("drguard-overview", "drguard — DR overview",
		"RPO exposure and RTO estimate against the objectives, backup freshness, restore tests, replication lag, incidents, approvals and remediation outcomes.",
		serviceVar, targetVar)
	objective := thresholds("green", 0.8, "orange", 1, "red")

	b.row("Objectives")
	add(b, 4, 6, gaugePanel("RPO exposure / objective",
		"Data the service would lose recovering now, with its best source, as a fraction of the RPO objective. Above 100% the objective is missed.",
		"percentunit", 0, 1.5, objective,
		instant(`service:drguard_rpo_exposure:ratio{service=~"$service"}`, "{{service}}")))
	add(b, 4, 6, gaugePanel("RTO estimate / objective",
		"Estimated recovery time (last restore test plus overheads) as a fraction of the RTO objective.",
		"percentunit", 0, 1.5, objective,
		instant(`service:drguard_rto_estimate:ratio{service=~"$service"}`, "{{service}}")))
	add(b, 4, 6, statPanel("Best RPO source", "The recovery source with the least exposure (backup, pitr, replica) and its exposure.",
		"s", thresholds("green"),
		instant(`service_source:drguard_rpo_exposure_seconds:best{service=~"$service"}`, "{{service}} {{source}}")))
	add(b, 4, 6, statPanel("Open incidents", "Incidents drguard has open, from alerts and its own probes.",
		"short", thresholds("green", 1, "red"),
		instant(`sum(drguard_incidents_open{service=~"$service"}) or vector(0)`, "open")))
	add(b, 4, 6, statPanel("Pending approvals", "Gated steps waiting for a human decision at /remediate.",
		"short", thresholds("green", 1, "orange"),
		instant(`max(drguard_remediation_pending_approvals)`, "pending")))
	add(b, 4, 6, statPanel("Remediation paused", "1 while the global kill switch is on: no remediation step runs.",
		"short", thresholds("green", 1, "red"),
		instant(`max(drguard_remediation_paused)`, "paused")))

	b.row("RPO and RTO")
	add(b, 12, 8, dashedObjective(timeseriesPanel("RPO exposure vs objective",
		"now − newest recoverable point, per recovery source; the dashed line is the RPO objective.", "s",
		q(`drguard_rpo_exposure_seconds{service=~"$service"}`, "{{service}} {{source}}"),
		q(`service:drguard_rpo_objective_seconds:max{service=~"$service"}`, "{{service}} objective"))))
	add(b, 12, 8, dashedObjective(timeseriesPanel("RTO estimate vs objective",
		"Estimated time to recover; the dashed line is the RTO objective.", "s",
		q(`drguard_rto_estimate_seconds{service=~"$service"}`, "{{service}} estimate"),
		q(`service:drguard_rto_objective_seconds:max{service=~"$service"}`, "{{service}} objective"))))

	b.row("Backups and restore tests")
	add(b, 8, 8, bargaugePanel("Backup age / schedule",
		"Age of the newest backup in backup intervals. Above 1.5 DrguardBackupStale fires.",
		"none", thresholds("green", 1, "orange", 1.5, "red"),
		instant(`service_target:drguard_backup_age:ratio{service=~"$service",target=~"$target"}`, "{{target}}")))
	add(b, 8, 8, timeseriesPanel("Backup age", "Seconds since the end of the newest backup, per target; the second line is where DrguardBackupStale starts.", "s",
		q(`time() - drguard_backup_last_success_timestamp_seconds{service=~"$service",target=~"$target"}`, "{{target}}"),
		q(`drguard_backup_expected_interval_seconds{service=~"$service",target=~"$target"} * 1.5`, "{{target}} stale above")))
	add(b, 8, 8, bargaugePanel("Last passing restore test",
		"Time since the last restore test that passed, per target. DrguardRestoreTestStale fires above 36h.",
		"s", thresholds("green", 86400, "orange", 129600, "red"),
		instant(`time() - drguard_restore_test_last_success_timestamp_seconds{service=~"$service",target=~"$target"}`, "{{target}}")))
	add(b, 6, 8, timeseriesPanel("Backup runs", "Backup runs by result over the last hour.", "short",
		q(`sum by (target, result) (increase(drguard_backup_runs_total{service=~"$service",target=~"$target"}[1h]))`, "{{target}} {{result}}")))
	add(b, 6, 8, timeseriesPanel("Backup size", "Size of the newest backup as stored.", "bytes",
		q(`drguard_backup_size_bytes{service=~"$service",target=~"$target"}`, "{{target}}")))
	add(b, 6, 8, timeseriesPanel("Backup duration", "How long the newest backup took.", "s",
		q(`drguard_backup_duration_seconds{service=~"$service",target=~"$target"}`, "{{target}}")))
	add(b, 6, 8, timeseriesPanel("Restore test duration", "How long the last restore test took: the measured part of the RTO.", "s",
		q(`drguard_restore_test_duration_seconds{service=~"$service",target=~"$target"}`, "{{target}}")))

	b.row("Replication")
	add(b, 12, 8, timeseriesPanel("Replication lag (time)", "Replica lag by drguard's heartbeat. DrguardReplicationLagSecondsHigh fires above 5m.", "s",
		q(`drguard_pg_replication_lag_seconds{target=~"$target"}`, "{{target}}")))
	add(b, 12, 8, timeseriesPanel("Replication lag (bytes)", "WAL not yet replayed. DrguardReplicationLagBytesHigh fires above 256 MiB.", "bytes",
		q(`drguard_pg_replication_lag_bytes{target=~"$target"}`, "{{target}}")))

	b.row("Incidents and remediation")
	add(b, 8, 8, timeseriesPanel("Open incidents", "Open incidents by service and scenario.", "short",
		q(`sum by (service, scenario) (drguard_incidents_open{service=~"$service"})`, "{{service}} {{scenario}}")))
	add(b, 8, 8, timeseriesPanel("Pending approvals", "Gated steps waiting for a decision.", "short",
		q(`max(drguard_remediation_pending_approvals)`, "pending")))
	add(b, 8, 8, bargaugePanel("Remediation outcomes", "Remediation steps by result over the dashboard's time range.",
		"short", thresholds("green"),
		instant(`sum by (result) (increase(drguard_remediation_steps_total[$__range]))`, "{{result}}")))

	b.drillsRow()
	return b.build()
}

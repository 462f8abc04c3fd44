package dashboards

//lint:file-ignore SA1019 the classic dashboard model (schema v1) is the JSON every Grafana since 10.4 imports; the SDK deprecates it for dashboardv2, which only Grafana 12 reads.

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

// ProbesRemediation is the detail dashboard: each probe, the database and
// Redis signals behind them, the alert intake, and what remediation did.
func ProbesRemediation() (dashboard.Dashboard, error) {
	b := newDashboard("drguard-probes-remediation", "drguard — probes and remediation",
		"drguard's probes, database and Redis persistence signals, alert intake, detections, remediation steps, guardrails and recovery durations.",
		serviceVar, targetVar, probeVar)

	b.row("Probes")
	add(b, 4, 8, statPanel("Failing probes", "Probes whose last attempt failed.", "short", thresholds("green", 1, "red"),
		instant(`count(drguard_probe_success{service=~"$service",probe=~"$probe"} == 0) or vector(0)`, "failing")))
	add(b, 20, 8, stateTimelinePanel("Probe status", "OK or FAIL per probe, by its last attempt.", "FAIL", "OK",
		q(`drguard_probe_success{service=~"$service",probe=~"$probe"}`, "{{probe}} ({{type}})")))
	add(b, 24, 8, timeseriesPanel("Probe duration", "How long each probe's last attempt took.", "s",
		q(`drguard_probe_duration_seconds{probe=~"$probe"}`, "{{probe}}")))

	b.row("Databases and Redis")
	add(b, 8, 7, stateTimelinePanel("WAL receiver", "Whether each replica's WAL receiver is streaming.", "DOWN", "STREAMING",
		q(`drguard_pg_wal_receiver_up{target=~"$target"}`, "{{target}}")))
	add(b, 8, 7, stateTimelinePanel("Redis persistence", "Whether Redis reports its persistence healthy.", "FAILING", "OK",
		q(`drguard_redis_persistence_ok{target=~"$target"}`, "{{target}}")))
	add(b, 8, 7, timeseriesPanel("Redis last RDB save", "Time since Redis's last successful RDB save.", "s",
		q(`time() - drguard_redis_rdb_last_save_timestamp_seconds{target=~"$target"}`, "{{target}}")))

	b.row("Intake and detections")
	add(b, 12, 8, timeseriesPanel("Alerts received", "Alerts received on the webhook per second, by status or refusal reason.", "reqps",
		q(`sum by (status) (rate(drguard_alerts_received_total[$__rate_interval]))`, "{{status}}")))
	add(b, 12, 8, timeseriesPanel("Detections", "New detections by scenario and source (alertmanager, probe).", "short",
		q(`sum by (scenario, source) (increase(drguard_detections_total[$__rate_interval]))`, "{{scenario}} {{source}}")))

	b.row("Remediation")
	add(b, 12, 8, timeseriesPanel("Steps by result", "Remediation steps by policy, action and result.", "short",
		q(`sum by (policy, action, result) (increase(drguard_remediation_steps_total[$__rate_interval]))`, "{{policy}} {{action}} {{result}}")))
	add(b, 12, 8, bargaugePanel("Guardrail blocks", "Steps a guardrail stopped (cooldown, max_runs, budget, pause, active run) over the time range.",
		"short", thresholds("green", 1, "orange"),
		instant(`sum by (policy, result) (increase(drguard_remediation_steps_total{result=~"blocked_.*"}[$__range]))`, "{{policy}} {{result}}")))
	add(b, 8, 8, timeseriesPanel("Failed steps", "Failed and interrupted steps by policy and action.", "short",
		q(`sum by (policy, action, result) (increase(drguard_remediation_steps_total{result=~"failed|interrupted"}[$__rate_interval]))`, "{{policy}} {{action}} {{result}}")))
	add(b, 8, 8, timeseriesPanel("Pending approvals and pause", "Gated steps waiting, and the kill switch.", "short",
		q(`max(drguard_remediation_pending_approvals)`, "pending approvals"),
		q(`max(drguard_remediation_paused)`, "paused")))
	add(b, 8, 8, timeseriesPanel("Recovery duration", "Detected → resolved, per service and scenario: 90th percentile and mean over the time range.", "s",
		q(`histogram_quantile(0.9, sum by (le, service, scenario) (increase(drguard_recovery_duration_seconds_bucket{service=~"$service"}[$__range])))`, "{{service}} {{scenario}} p90"),
		q(`sum by (service, scenario) (increase(drguard_recovery_duration_seconds_sum{service=~"$service"}[$__range])) / sum by (service, scenario) (increase(drguard_recovery_duration_seconds_count{service=~"$service"}[$__range]))`, "{{service}} {{scenario}} mean")))

	b.row("drguard")
	add(b, 8, 5, statPanel("Uptime", "Time since each drguard process started.", "s", thresholds("orange", 300, "green"),
		instant(`time() - process_start_time_seconds{job="drguard"}`, "{{instance}}")))
	add(b, 16, 5, statPanel("Version", "drguard build information.", "none", thresholds("blue"),
		instant(`drguard_build_info`, "{{version}} ({{revision}}, {{goversion}})")))
	return b.build()
}

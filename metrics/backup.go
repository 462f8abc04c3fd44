package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Backups holds the backup and restore-test metrics: facts the backup
// service reports. The objectives computed from them are in Objectives.
//
// drguard_backup_age_seconds and drguard_backup_last_success_timestamp_seconds
// are defined once, in Probes (the backup_age probe sets them too): NewBackups
// reuses the Probes' vectors when given them, so that each name is
// registered only once.
type Backups struct {
	// LastSuccess is the end time of the newest good backup; shared with
	// Probes.BackupLastSuccess.
	LastSuccess *prometheus.GaugeVec
	// Age is now minus LastSuccess; shared with Probes.BackupAge.
	Age *prometheus.GaugeVec
	// ExpectedInterval is the configured backup interval.
	ExpectedInterval *prometheus.GaugeVec
	// Size is the stored (compressed, encrypted) size of the newest backup.
	Size *prometheus.GaugeVec
	// Duration is how long the newest backup took.
	Duration *prometheus.GaugeVec
	// Runs counts backup runs by result (success, failure).
	Runs *prometheus.CounterVec

	// RestoreTestLastSuccess is when the last successful restore test ended.
	RestoreTestLastSuccess *prometheus.GaugeVec
	// RestoreTestDuration is how long the last restore test took.
	RestoreTestDuration *prometheus.GaugeVec
	// RestoreTestRecoveryPoint is the newest heartbeat found inside the
	// data the last successful restore test restored.
	RestoreTestRecoveryPoint *prometheus.GaugeVec
	// RestoreTestRuns counts restore tests by result (success, failure).
	RestoreTestRuns *prometheus.CounterVec
}

// Results of backup runs and restore tests, as counted in
// drguard_backup_runs_total and drguard_restore_test_runs_total.
const (
	BackupSuccess = "success"
	BackupFailure = "failure"
)

// NewBackups registers the backup and restore-test metrics with reg. When
// probes is not nil its backup-freshness vectors are reused rather than
// registered again (pass the daemon's Probes); when nil, NewBackups creates
// and registers them itself, so never call it with nil on a registry that
// also holds NewProbes' metrics.
func NewBackups(reg prometheus.Registerer, probes *Probes) *Backups {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	m := &Backups{
		ExpectedInterval: gauge("backup_expected_interval_seconds",
			"Configured interval between backups.", "service", "target"),
		Size: gauge("backup_size_bytes",
			"Stored size (compressed and encrypted) of the newest backup.", "service", "target"),
		Duration: gauge("backup_duration_seconds",
			"Duration of the newest backup, from dump start to manifest written.", "service", "target"),
		Runs: counter("backup_runs_total",
			"Backup runs by result (success, failure).", "service", "target", "result"),
		RestoreTestLastSuccess: gauge("restore_test_last_success_timestamp_seconds",
			"End time of the last successful restore test.", "service", "target"),
		RestoreTestDuration: gauge("restore_test_duration_seconds",
			"Duration of the last restore test: download, authenticate, decrypt, restore, check.", "service", "target"),
		RestoreTestRecoveryPoint: gauge("restore_test_recovery_point_timestamp_seconds",
			"Newest heartbeat found inside the data of the last successful restore test (its recovery point).", "service", "target"),
		RestoreTestRuns: counter("restore_test_runs_total",
			"Restore tests by result (success, failure).", "service", "target", "result"),
	}
	if probes != nil {
		m.LastSuccess, m.Age = probes.BackupLastSuccess, probes.BackupAge
	} else {
		m.LastSuccess = gauge("backup_last_success_timestamp_seconds",
			"End time of the newest backup found in object storage.", "service", "target")
		m.Age = gauge("backup_age_seconds",
			"Seconds since the end of the newest backup found in object storage.", "service", "target")
		reg.MustRegister(m.LastSuccess, m.Age)
	}
	reg.MustRegister(m.ExpectedInterval, m.Size, m.Duration, m.Runs,
		m.RestoreTestLastSuccess, m.RestoreTestDuration, m.RestoreTestRecoveryPoint, m.RestoreTestRuns)
	return m
}

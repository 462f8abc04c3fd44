package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Backups holds the backup, restore-test and recovery-objective metrics.
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

	// RPOObjective and RTOObjective are the configured objectives.
	RPOObjective *prometheus.GaugeVec
	RTOObjective *prometheus.GaugeVec
	// RTOEstimate is the last restore test's duration plus the service's
	// configured overhead.
	RTOEstimate *prometheus.GaugeVec
	// RecoveryDuration observes incidents from detection to resolution.
	// Its service and scenario come from alert labels: capped at
	// MaxLabelValues.
	RecoveryDuration *CappedHistogramVec

	exposure *exposureCollector
}

// Results of backup runs and restore tests, as counted in
// drguard_backup_runs_total and drguard_restore_test_runs_total.
const (
	BackupSuccess = "success"
	BackupFailure = "failure"
)

// RecoveryDurationBuckets span one minute to a day, around the plan's 4h RTO.
var RecoveryDurationBuckets = []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400}

// NewBackups registers the backup and objective metrics with reg. When
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
		RPOObjective: gauge("rpo_objective_seconds",
			"Configured recovery point objective.", "service"),
		RTOObjective: gauge("rto_objective_seconds",
			"Configured recovery time objective.", "service"),
		RTOEstimate: gauge("rto_estimate_seconds",
			"Estimated recovery time: the last restore test's duration plus the configured overhead.", "service"),
		RecoveryDuration: cappedHistogram(reg, prometheus.HistogramOpts{
			Namespace: Namespace, Name: "recovery_duration_seconds",
			Help:    "Time from detection to resolution of incidents, by service and scenario.",
			Buckets: RecoveryDurationBuckets,
		}, []string{"service", "scenario"}, "service", "scenario"),
		exposure: &exposureCollector{desc: prometheus.NewDesc(
			prometheus.BuildFQName(Namespace, "", "rpo_exposure_seconds"),
			"Data that would be lost now, per recovery source (backup, replica, pitr): now minus its newest recoverable point.",
			[]string{"service", "source"}, nil)},
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
		m.RestoreTestLastSuccess, m.RestoreTestDuration, m.RestoreTestRecoveryPoint, m.RestoreTestRuns,
		m.RPOObjective, m.RTOObjective, m.RTOEstimate, m.RecoveryDuration, m.exposure)
	return m
}

// Exposure is the current RPO exposure of one recovery source of a service.
type Exposure struct {
	Service string
	Source  string // backup, replica, pitr
	Seconds float64
}

// SetExposureFunc sets the function that computes
// drguard_rpo_exposure_seconds at each scrape, so the value is always
// "now minus the recovery point" and never a stale snapshot.
func (m *Backups) SetExposureFunc(fn func() []Exposure) {
	m.exposure.mu.Lock()
	defer m.exposure.mu.Unlock()
	m.exposure.fn = fn
}

// exposureCollector computes rpo_exposure_seconds when scraped.
type exposureCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	fn   func() []Exposure
}

// Describe sends the one descriptor.
func (c *exposureCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect sends one gauge per (service, source).
func (c *exposureCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fn := c.fn
	c.mu.Unlock()
	if fn == nil {
		return
	}
	for _, e := range fn() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, e.Seconds, e.Service, e.Source)
	}
}

package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Probes holds the metrics the probe scheduler and the probe kinds set:
// per-probe outcome and duration, PostgreSQL replication, Redis persistence
// and backup freshness as seen in object storage.
type Probes struct {
	// Success is 1 when the probe's last attempt passed, 0 otherwise.
	Success *prometheus.GaugeVec
	// Duration is how long the probe's last attempt took.
	Duration *prometheus.GaugeVec

	// PGLagSeconds is the replication lag in time: on a replica, now minus
	// the replicated heartbeat; on a primary, the largest lag over its
	// standbys.
	PGLagSeconds *prometheus.GaugeVec
	// PGLagBytes is the replication lag in bytes of WAL not yet replayed.
	PGLagBytes *prometheus.GaugeVec
	// PGWALReceiverUp is 1 when a replica's WAL receiver is streaming.
	PGWALReceiverUp *prometheus.GaugeVec

	// RedisRDBLastSave is the time of the last successful RDB save.
	RedisRDBLastSave *prometheus.GaugeVec
	// RedisPersistenceOK is 1 when Redis reports its last RDB save and AOF
	// write (if enabled) as successful and unsaved changes are not too old.
	RedisPersistenceOK *prometheus.GaugeVec

	// BackupAge is now minus the end time of the newest backup.
	BackupAge *prometheus.GaugeVec
	// BackupLastSuccess is the end time of the newest backup.
	BackupLastSuccess *prometheus.GaugeVec
}

// NewProbes registers the probe, database and backup-freshness metrics with
// reg.
func NewProbes(reg prometheus.Registerer) *Probes {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	m := &Probes{
		Success: gauge("probe_success",
			"1 if the probe's last attempt passed, 0 if it failed or timed out.", "probe", "type", "service"),
		Duration: gauge("probe_duration_seconds",
			"Duration of the probe's last attempt.", "probe"),
		PGLagSeconds: gauge("pg_replication_lag_seconds",
			"PostgreSQL replication lag in seconds (replica: now minus the replicated heartbeat; primary: the largest over its standbys).", "target"),
		PGLagBytes: gauge("pg_replication_lag_bytes",
			"PostgreSQL WAL not yet replayed, in bytes (replica: received minus replayed; primary: the largest over its standbys).", "target"),
		PGWALReceiverUp: gauge("pg_wal_receiver_up",
			"1 if the PostgreSQL replica's WAL receiver is streaming.", "target"),
		RedisRDBLastSave: gauge("redis_rdb_last_save_timestamp_seconds",
			"Time of Redis's last successful RDB save.", "target"),
		RedisPersistenceOK: gauge("redis_persistence_ok",
			"1 if Redis reports its persistence healthy (last BGSAVE and AOF write ok, unsaved changes not older than max_age).", "target"),
		BackupAge: gauge("backup_age_seconds",
			"Seconds since the end of the newest backup found in object storage.", "service", "target"),
		BackupLastSuccess: gauge("backup_last_success_timestamp_seconds",
			"End time of the newest backup found in object storage.", "service", "target"),
	}
	reg.MustRegister(m.Success, m.Duration, m.PGLagSeconds, m.PGLagBytes, m.PGWALReceiverUp,
		m.RedisRDBLastSave, m.RedisPersistenceOK, m.BackupAge, m.BackupLastSuccess)
	return m
}

// ForgetProbe removes the per-probe series of a probe that no longer exists
// (after a configuration reload).
func (m *Probes) ForgetProbe(name string) {
	m.Success.DeletePartialMatch(prometheus.Labels{"probe": name})
	m.Duration.DeletePartialMatch(prometheus.Labels{"probe": name})
}

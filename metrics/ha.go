package metrics

import "github.com/prometheus/client_golang/prometheus"

// Why a replica stopped leading, the reason label of
// drguard_leader_changes_total{change="lost"}.
const (
	LostFenced   = "fenced"         // a renewal or a write was refused: another replica leads
	LostDeadline = "renew_deadline" // the lease could not be renewed in time
	LostError    = "error"          // a leader-only component failed
	LostShutdown = "shutdown"       // the process stops and released the lease
)

// Leader holds the metrics of leader election and fencing. Every replica
// exports them; drguard_leader is 1 on the leader only.
type Leader struct {
	// Leader is 1 while this replica leads, else 0.
	Leader prometheus.Gauge
	// Changes counts this replica's leadership changes: acquired, or lost
	// with the reason.
	Changes *prometheus.CounterVec
	// RenewFailures counts renewals of the lease that failed.
	RenewFailures prometheus.Counter
	// FencedWrites counts journal writes of this replica that the lease
	// refused because a newer epoch exists.
	FencedWrites prometheus.Counter
	// Epoch is the epoch of the lease this replica holds or last held.
	Epoch prometheus.Gauge
}

// NewLeader registers the leader-election metrics with reg.
func NewLeader(reg prometheus.Registerer) *Leader {
	m := &Leader{
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "leader",
			Help: "1 while this replica is the leader (holds the journal's lease and runs remediation, backups and status updates), else 0."}),
		Changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "leader_changes_total",
			Help: "Leadership changes of this replica: change=acquired, or change=lost with the reason (fenced, renew_deadline, error, shutdown)."},
			[]string{"change", "reason"}),
		RenewFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "lease_renew_failures_total",
			Help: "Renewals of the leader lease that failed (the journal unreachable or slow, or the lease taken over)."}),
		FencedWrites: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "fenced_writes_total",
			Help: "Journal writes of this replica refused by the lease's epoch: it had been deposed when they arrived."}),
		Epoch: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "leader_epoch",
			Help: "Epoch of the leader lease this replica holds or last held (increases by one on every takeover)."}),
	}
	m.Changes.WithLabelValues("acquired", "")
	for _, r := range []string{LostFenced, LostDeadline, LostError, LostShutdown} {
		m.Changes.WithLabelValues("lost", r)
	}
	reg.MustRegister(m.Leader, m.Changes, m.RenewFailures, m.FencedWrites, m.Epoch)
	return m
}

// Watchdogs holds the dead-man switches' metrics, exported by the leader.
type Watchdogs struct {
	// LastSeen is when each watchdog's newest notification arrived.
	LastSeen *prometheus.GaugeVec
	// Missing is 1 while a watchdog is missing.
	Missing *prometheus.GaugeVec
}

// NewWatchdogs registers the watchdog metrics with reg.
func NewWatchdogs(reg prometheus.Registerer) *Watchdogs {
	m := &Watchdogs{
		LastSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "watchdog_last_seen_timestamp_seconds",
			Help: "When the newest notification of the watchdog (an always-firing alert from a monitored region) arrived; 0 if never."}, []string{"watchdog"}),
		Missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "watchdog_missing",
			Help: "1 while the watchdog has not arrived for its missing_after and its detection is firing."}, []string{"watchdog"}),
	}
	reg.MustRegister(m.LastSeen, m.Missing)
	return m
}

// ForgetLeaderOnly drops the series that only the leader keeps current
// (probe results, backup freshness, open incidents, pending approvals,
// watchdogs), when a replica stops leading: a follower exports none of
// them rather than the values of its last term, which would go stale while
// another replica leads, and rules that aggregate over replicas
// (max by …) see the leader's alone. Any argument may be nil.
func ForgetLeaderOnly(r *Remediation, p *Probes, b *Backups, w *Watchdogs) {
	if r != nil {
		r.IncidentsOpen.Reset()
		r.PendingApprovals.Set(0)
		r.RunsActive.Set(0)
		r.Paused.Set(0)
	}
	if p != nil {
		for _, v := range []*prometheus.GaugeVec{p.Success, p.Duration, p.PGLagSeconds, p.PGLagBytes, p.PGWALReceiverUp,
			p.RedisRDBLastSave, p.RedisPersistenceOK, p.BackupAge, p.BackupLastSuccess} {
			v.Reset()
		}
	}
	if b != nil {
		for _, v := range []*prometheus.GaugeVec{b.LastSuccess, b.Age, b.ExpectedInterval, b.Size, b.Duration,
			b.RestoreTestLastSuccess, b.RestoreTestDuration, b.RestoreTestRecoveryPoint} {
			v.Reset()
		}
	}
	if w != nil {
		w.LastSeen.Reset()
		w.Missing.Reset()
	}
}

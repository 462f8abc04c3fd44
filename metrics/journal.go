package metrics

import "github.com/prometheus/client_golang/prometheus"

// Record kinds of drguard_journal_compacted_total.
const (
	RecordIncident    = "incident"
	RecordRun         = "run"
	RecordApproval    = "approval"
	RecordChatMessage = "chat_message"
)

// Journal holds the metrics of the journal's retention.
type Journal struct {
	// Compacted counts records that retention removed, by kind.
	Compacted *prometheus.CounterVec
	// CompactionFailures counts compactions that stopped on an error.
	CompactionFailures prometheus.Counter
	// LastCompaction is when the newest compaction ended without error.
	LastCompaction prometheus.Gauge
}

// NewJournal registers the journal's retention metrics with reg.
func NewJournal(reg prometheus.Registerer) *Journal {
	m := &Journal{
		Compacted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "journal_compacted_total",
			Help: "Journal records removed by retention (storage.retention), by record kind (incident, run, approval, chat_message).",
		}, []string{"record"}),
		CompactionFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "journal_compaction_failures_total",
			Help: "Journal compactions that stopped on an error (retried at the next one).",
		}),
		LastCompaction: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "journal_last_compaction_timestamp_seconds",
			Help: "When the newest journal compaction ended without error.",
		}),
	}
	for _, r := range []string{RecordIncident, RecordRun, RecordApproval, RecordChatMessage} {
		m.Compacted.WithLabelValues(r)
	}
	reg.MustRegister(m.Compacted, m.CompactionFailures, m.LastCompaction)
	return m
}

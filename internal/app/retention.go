package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// Journal retention, a leader-only component.
const (
	// compactEvery is how often the leader compacts the journal.
	compactEvery = time.Hour
	// compactBatch is how many incidents one compaction transaction looks
	// at removing, so that no transaction holds the journal for long.
	compactBatch = 200
)

// retention removes resolved incidents older than storage.retention from
// the journal, with what hangs off them (store.CompactJournal): at the
// start of each term and every compactEvery, through the leader's fenced
// journal. A failure is logged and counted, and retried at the next
// round; it never ends the term.
type retention struct {
	update func(func(*store.Tx) error) error
	keep   time.Duration
	every  time.Duration
	m      *metrics.Journal
	log    *slog.Logger
	now    func() time.Time
}

// Run compacts the journal now and every r.every until ctx ends.
func (r *retention) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		r.Once()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once runs one compaction and reports it.
func (r *retention) Once() store.Compacted {
	cutoff := r.now().Add(-r.keep)
	c, err := store.CompactJournal(r.update, config.SystemActor, cutoff, compactBatch)
	if m := r.m; m != nil {
		m.Compacted.WithLabelValues(metrics.RecordIncident).Add(float64(c.Incidents))
		m.Compacted.WithLabelValues(metrics.RecordRun).Add(float64(c.Runs))
		m.Compacted.WithLabelValues(metrics.RecordApproval).Add(float64(c.Approvals))
		m.Compacted.WithLabelValues(metrics.RecordChatMessage).Add(float64(c.ChatMessages))
		if err != nil {
			m.CompactionFailures.Inc()
		} else {
			m.LastCompaction.SetToCurrentTime()
		}
	}
	switch {
	case err != nil:
		r.log.Error("journal compaction stopped; will retry", "err", err, "incidents_removed", c.Incidents)
	case c.Incidents > 0:
		r.log.Info("journal compacted", "incidents", c.Incidents, "runs", c.Runs, "approvals", c.Approvals,
			"chat_messages", c.ChatMessages, "ended_before", cutoff.UTC().Format(time.RFC3339))
	}
	return c
}

package app

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
)

// TestJournalRetentionCounts runs the daemon's retention component on a
// journal with incidents on either side of storage.retention: the old
// resolved one is removed and counted in drguard_journal_compacted_total,
// the recent one stays.
func TestJournalRetentionCounts(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	keep := 30 * 24 * time.Hour
	var oldID, newID string
	err = st.Update(func(tx *store.Tx) error {
		for _, ended := range []time.Time{now.Add(-keep - time.Minute), now.Add(-keep + time.Minute)} {
			in := store.Incident{Key: ended.String(), State: store.IncidentResolved, ResolvedAt: ended, LastSeen: ended}
			if err := tx.PutIncident(&in); err != nil {
				return err
			}
			r := store.Run{IncidentID: in.ID, Policy: "p", Target: in.ID, State: store.RunSucceeded}
			if err := tx.PutRun(&r); err != nil {
				return err
			}
			in.RunIDs = []string{r.ID}
			if err := tx.PutIncident(&in); err != nil {
				return err
			}
			oldID, newID = newID, in.ID
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := &retention{update: st.Update, keep: keep, every: time.Hour, m: metrics.NewJournal(reg),
		log: testharness.Logger(t), now: func() time.Time { return now }}
	if c := r.Once(); c != (store.Compacted{Incidents: 1, Runs: 1}) {
		t.Errorf("compacted %+v", c)
	}
	for _, tc := range []struct {
		record string
		want   float64
	}{{metrics.RecordIncident, 1}, {metrics.RecordRun, 1}, {metrics.RecordApproval, 0}} {
		if got := testutil.ToFloat64(r.m.Compacted.WithLabelValues(tc.record)); got != tc.want {
			t.Errorf("drguard_journal_compacted_total{record=%q} = %v, want %v", tc.record, got, tc.want)
		}
	}
	if testutil.ToFloat64(r.m.LastCompaction) == 0 || testutil.ToFloat64(r.m.CompactionFailures) != 0 {
		t.Error("the compaction is not reported as done")
	}
	_ = st.View(func(tx *store.Tx) error {
		if _, err := tx.Incident(oldID); err == nil {
			t.Errorf("incident %s, resolved before the retention, is still journaled", oldID)
		}
		if _, err := tx.Incident(newID); err != nil {
			t.Errorf("incident %s, within the retention, was removed: %v", newID, err)
		}
		return nil
	})
}

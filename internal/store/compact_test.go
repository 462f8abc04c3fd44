package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestRetentionRemovesOnlyIncidentsPastTheLimit journals incidents on
// both sides of the retention limit and compacts in small batches: resolved
// incidents that ended before the cutoff go, with their runs, approvals,
// chat messages and index entries; open ones, newer ones and one whose run
// is still active stay, with everything of theirs. One audit entry per
// batch that removed something carries the counts.
func TestRetentionRemovesOnlyIncidentsPastTheLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		cutoff := now.Add(-365 * 24 * time.Hour)
		old, recent := cutoff.Add(-time.Hour), cutoff.Add(time.Hour)
		type seed struct {
			name     string
			state    string
			ended    time.Time
			runState RunState
			approval ApprovalState
			keep     bool
		}
		seeds := []seed{
			{name: "old resolved with a run, an approval and a chat message", state: IncidentResolved, ended: old, runState: RunSucceeded, approval: ApprovalApproved},
			{name: "old resolved without runs", state: IncidentResolved, ended: old},
			{name: "old resolved with a failed run", state: IncidentResolved, ended: old, runState: RunFailed, approval: ApprovalObsolete},
			{name: "old but still open", state: IncidentOpen, ended: old, runState: RunFailed, keep: true},
			{name: "resolved just inside the retention", state: IncidentResolved, ended: recent, runState: RunSucceeded, approval: ApprovalApproved, keep: true},
			{name: "old resolved whose run is still active", state: IncidentResolved, ended: old, runState: RunRunning, keep: true},
			{name: "old resolved with a pending approval", state: IncidentResolved, ended: old, runState: RunSucceeded, approval: ApprovalPending, keep: true},
			{name: "old resolved, last of the journal", state: IncidentResolved, ended: old, runState: RunDryRun},
		}
		type ids struct{ incident, key, run, approval string }
		made := make([]ids, len(seeds))
		err := s.Update(func(tx *Tx) error {
			for i, sd := range seeds {
				in := Incident{Key: fmt.Sprintf("fp-%d|start", i), State: sd.state, FirstSeen: sd.ended.Add(-time.Hour), LastSeen: sd.ended,
					Labels: map[string]string{"alertname": sd.name}}
				if sd.state == IncidentResolved {
					in.ResolvedAt = sd.ended
				}
				if err := tx.PutIncident(&in); err != nil {
					return err
				}
				made[i] = ids{incident: in.ID, key: in.Key}
				if sd.runState == "" {
					continue
				}
				r := Run{IncidentID: in.ID, Policy: "p", Target: fmt.Sprintf("t%d", i), State: sd.runState, CreatedAt: in.FirstSeen}
				if err := tx.PutRun(&r); err != nil {
					return err
				}
				made[i].run = r.ID
				in.RunIDs = []string{r.ID}
				if err := tx.PutIncident(&in); err != nil {
					return err
				}
				if err := tx.PutAwaiting(Awaiting{Policy: "p", IncidentID: in.ID, Since: in.FirstSeen, Until: sd.ended}); err != nil {
					return err
				}
				if sd.approval == "" {
					continue
				}
				a := Approval{RunID: r.ID, IncidentID: in.ID, Step: "s", State: sd.approval, CreatedAt: in.FirstSeen}
				if err := tx.PutApproval(&a); err != nil {
					return err
				}
				made[i].approval = a.ID
				if err := tx.PutChatMessage(ChatMessage{ApprovalID: a.ID, Notifier: "slack", Channel: "C1", TS: "1.2"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		got, err := CompactJournal(s.Update, "drguard", cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Compacted{Incidents: 4, Runs: 3, Approvals: 2, ChatMessages: 2}); got != want {
			t.Errorf("compacted %+v, want %+v", got, want)
		}
		err = s.View(func(tx *Tx) error {
			for i, sd := range seeds {
				m := made[i]
				_, errInc := tx.Incident(m.incident)
				_, errKey := tx.IncidentByKey(m.key)
				present := []bool{errInc == nil, errKey == nil}
				if m.run != "" {
					_, errRun := tx.Run(m.run)
					present = append(present, errRun == nil)
				}
				if m.approval != "" {
					_, errApr := tx.Approval(m.approval)
					_, errMsg := tx.ChatMessage(m.approval, "slack")
					present = append(present, errApr == nil, errMsg == nil)
				}
				for _, e := range []error{errInc, errKey} {
					if e != nil && !errors.Is(e, ErrNotFound) {
						return e
					}
				}
				if slices.Contains(present, !sd.keep) {
					t.Errorf("%s (%s): records present %v, want all %v", sd.name, m.incident, present, sd.keep)
				}
			}
			var waits []string
			if err := tx.ForEachAwaiting(func(a Awaiting) error { waits = append(waits, a.IncidentID); return nil }); err != nil {
				return err
			}
			var kept []string
			for i, sd := range seeds {
				if sd.keep && sd.runState != "" {
					kept = append(kept, made[i].incident)
				}
			}
			if !slices.Equal(waits, kept) {
				t.Errorf("corroboration waits left: %v, want those of the kept incidents %v", waits, kept)
			}
			active, err := tx.ActiveRuns()
			if err != nil {
				return err
			}
			if len(active) != 1 || active[0].ID != made[5].run {
				t.Errorf("active runs after compaction: %+v", active)
			}
			removed := 0
			err = tx.ForEachAudit(func(e AuditEntry) error {
				if e.Action != AuditJournalCompacted {
					return nil
				}
				if e.Actor != "drguard" || e.Detail["ended_before"] != cutoff.Format(time.RFC3339) {
					t.Errorf("audit entry %+v", e)
				}
				var n int
				_, _ = fmt.Sscan(e.Detail["incidents"], &n)
				removed += n
				return nil
			})
			if removed != 4 {
				t.Errorf("audit entries account for %d incidents removed, want 4", removed)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		// A second pass finds nothing more to do and journals nothing.
		var before, after uint64
		_ = s.View(func(tx *Tx) error { before, _ = tx.LastAuditSeq(); return nil })
		again, err := CompactJournal(s.Update, "drguard", cutoff, 2)
		_ = s.View(func(tx *Tx) error { after, _ = tx.LastAuditSeq(); return nil })
		if err != nil || again != (Compacted{}) || after != before {
			t.Errorf("second compaction: %+v, %v, audit %d → %d", again, err, before, after)
		}
		// New incidents still get new IDs: removed ones are never reused.
		err = s.Update(func(tx *Tx) error {
			in := Incident{Key: "new", State: IncidentOpen}
			if err := tx.PutIncident(&in); err != nil {
				return err
			}
			if want := fmt.Sprintf("inc-%06d", len(seeds)+1); in.ID != want {
				t.Errorf("new incident ID %s, want %s", in.ID, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkCompactJournal measures retention on a journal of 2000 resolved
// incidents past the limit, each with a run and an approval, beside 2000
// recent ones that stay: incidents removed per second, per backend.
//
//	go test -run '^$' -bench CompactJournal -benchtime 3x ./internal/store/
func BenchmarkCompactJournal(b *testing.B) {
	const n = 2000
	cutoff := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, bj := range benchJournals {
		b.Run(bj.name, func(b *testing.B) {
			var removed int
			var spent time.Duration
			for range b.N {
				s := bj.new(b).openT(b)
				err := s.Update(func(tx *Tx) error {
					for i := range 2 * n {
						ended := cutoff.Add(-time.Hour)
						if i%2 == 1 {
							ended = cutoff.Add(time.Hour)
						}
						in := Incident{Key: fmt.Sprint(i), State: IncidentResolved, ResolvedAt: ended}
						if err := tx.PutIncident(&in); err != nil {
							return err
						}
						r := Run{IncidentID: in.ID, State: RunSucceeded}
						if err := tx.PutRun(&r); err != nil {
							return err
						}
						a := Approval{RunID: r.ID, IncidentID: in.ID, State: ApprovalApproved}
						if err := tx.PutApproval(&a); err != nil {
							return err
						}
						in.RunIDs = []string{r.ID}
						if err := tx.PutIncident(&in); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				c, err := CompactJournal(s.Update, "drguard", cutoff, 200)
				spent += time.Since(start)
				if err != nil || c.Incidents != n {
					b.Fatalf("compacted %+v, %v; want %d incidents", c, err, n)
				}
				removed += c.Incidents
			}
			b.ReportMetric(float64(removed)/spent.Seconds(), "incidents/s")
		})
	}
}

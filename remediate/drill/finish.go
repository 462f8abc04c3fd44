package drill

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// finish releases what the drill holds, decides its checklist and result,
// journals and audits it, sets the metrics and announces the end.
func (x *execution) finish() {
	for _, release := range x.release {
		release()
	}
	x.release = nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), 30*time.Second)
	defer cancel()
	if x.d.Inject.Synthetic && !x.run.InjectedAt.IsZero() && x.r.ctx.Err() == nil {
		// The synthetic alert resolves with the drill, as the real one
		// would with the recovery.
		if err := x.r.o.Store.EnqueueAlerts(ctx, []store.Alert{x.syntheticAlert(detect.StatusResolved)}); err != nil {
			x.r.log.Error("resolving the synthetic detection failed", "run", x.run.ID, "err", err)
		}
		x.r.o.Engine.Wake()
	}
	e := x.evidence(ctx)
	x.mu.Lock()
	d := &x.run
	if !d.RecoveredAt.IsZero() {
		rto := d.RecoveredAt.Sub(d.InjectedAt)
		d.RTO = &store.DrillMeasure{Seconds: rto.Seconds(), ObjectiveSeconds: d.Objective.RTOSeconds, Within: rto.Seconds() <= d.Objective.RTOSeconds,
			From: d.InjectedAt, To: d.RecoveredAt, Detail: "injection → recovered_when " + d.RecoveredWhen + " passing"}
	}
	d.Phases = phases(*d, e.runs, x.approvals(e.runs))
	d.Checklist = checklist(*d, e)
	d.EndedAt = x.r.now().UTC()
	var failed []string
	for _, c := range d.Checklist {
		if c.Status != store.CheckPass {
			failed = append(failed, c.Title)
		}
	}
	switch {
	case x.r.ctx.Err() != nil:
		d.State, d.Reason = store.DrillInterrupted, "drguard stopped during the drill; the injected failure may still be in place and the drill's runs go on as an incident's would"
	case x.aborted:
		d.State, d.Reason = store.DrillAborted, "aborted by "+d.AbortedBy
	case len(failed) == 0:
		d.State, d.Reason = store.DrillPassed, "every item of the testing checklist passed"
	default:
		d.State, d.Reason = store.DrillFailed, "not passed: "+strings.Join(failed, "; ")
		if x.failure != "" {
			d.Reason = x.failure + "; " + d.Reason
		}
	}
	x.logf("ended", "%s: %s", d.State, d.Reason)
	run := *d
	x.mu.Unlock()
	x.r.o.Metrics.Running.WithLabelValues(x.d.Name).Set(0)
	x.r.setResultMetrics(x.d, run)
	x.save()
	if err := x.r.o.Journal.Update(func(tx *store.Tx) error {
		return tx.Audit(store.AuditEntry{Time: run.EndedAt, Actor: Requester(x.d.Name), Action: "drill.ended", Subject: run.ID,
			Detail: map[string]string{"drill": x.d.Name, "state": run.State, "reason": run.Reason}})
	}); err != nil {
		x.r.log.Error("auditing the drill's end failed", "run", run.ID, "err", err)
	}
	if x.r.ctx.Err() == nil {
		x.r.announce(ctx, x.d, &run, "end")
		x.mu.Lock()
		x.run.Announcements = run.Announcements
		x.mu.Unlock()
		x.save()
	}
	x.r.log.Info("drill ended", "drill", x.d.Name, "run", run.ID, "state", run.State, "reason", run.Reason)
}

// evidence gathers, from the journal and the backups, what the checklist
// is decided from.
func (x *execution) evidence(ctx context.Context) evidence {
	e := evidence{runs: x.runs()}
	x.mu.Lock()
	e.recovery = x.recovery
	var ids []string
	for _, in := range x.run.Incidents {
		ids = append(ids, in.ID)
	}
	var after time.Time
	if x.run.RPO != nil {
		after = x.run.RPO.From
	}
	service := x.run.Service
	x.mu.Unlock()
	err := x.r.o.Store.View(func(tx *store.Tx) error {
		for _, id := range ids {
			in, err := tx.Incident(id)
			if err != nil {
				return err
			}
			e.incidents = append(e.incidents, in)
		}
		return tx.ForEachRestoreTestRun(func(rt store.RestoreTestRun) error {
			if rt.Service == service && rt.Result == store.BackupSucceeded && (e.restoreTest == nil || rt.End.After(e.restoreTest.End)) {
				e.restoreTest = &rt
			}
			return nil
		})
	})
	if err != nil {
		x.r.log.Error("reading the drill's evidence failed", "run", x.run.ID, "err", err)
	}
	if !after.IsZero() && x.r.o.Backups != nil {
		e.restored = x.restoredBackup(ctx, service, after)
	}
	return e
}

// restoredBackup names the backup of service whose recovery point is the
// heartbeat the serving database holds after the recovery, if any.
func (x *execution) restoredBackup(ctx context.Context, service string, heartbeat time.Time) string {
	for _, b := range x.r.o.Config.Backups {
		if b.Service != service {
			continue
		}
		ms, err := x.r.o.Backups.Catalog(ctx, b.Name)
		if err != nil {
			x.r.log.Warn("reading the backup catalog failed", "backup", b.Name, "err", err)
			continue
		}
		for i := len(ms) - 1; i >= 0; i-- {
			if hb := ms[i].Heartbeat; hb != nil && hb.Truncate(time.Microsecond).Equal(heartbeat.Truncate(time.Microsecond)) {
				return fmt.Sprintf("%s/%s (taken %s)", b.Name, ms[i].ID, ms[i].Start.UTC().Format(time.RFC3339))
			}
		}
	}
	return ""
}

// approvals reads the approvals of the runs' gated steps.
func (x *execution) approvals(runs []store.Run) map[string]store.Approval {
	out := map[string]store.Approval{}
	err := x.r.o.Store.View(func(tx *store.Tx) error {
		for _, r := range runs {
			for _, st := range r.Steps {
				if st.ApprovalID == "" {
					continue
				}
				a, err := tx.Approval(st.ApprovalID)
				if err != nil {
					return err
				}
				out[a.ID] = a
			}
		}
		return nil
	})
	if err != nil {
		x.r.log.Error("reading the drill's approvals failed", "run", x.run.ID, "err", err)
	}
	return out
}

package drill

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// notifiers returns the notifiers a drill speaks through: those its
// policies' notify steps use, else every configured notifier.
func notifiers(cfg *config.Config, d config.Drill) []string {
	seen := map[string]bool{}
	var out []string
	for _, name := range d.AllPolicies() {
		p, _ := cfg.Policy(name)
		for _, st := range p.Steps {
			kind, ok := strings.CutPrefix(st.Action, "notify.")
			if !ok {
				continue
			}
			named, _ := st.Params["notifier"].(string)
			if nc, err := action.ResolveNotifier(cfg, kind, named); err == nil && !seen[nc.Name] {
				seen[nc.Name] = true
				out = append(out, nc.Name)
			}
		}
	}
	if len(out) == 0 {
		for _, n := range cfg.Notifiers {
			out = append(out, n.Name)
		}
	}
	return out
}

// announce tells the drill's notifiers that run starts ("start") or has
// ended ("end"), and returns what was delivered or not.
func (r *Runner) announce(ctx context.Context, d config.Drill, run *store.DrillRun, kind string) {
	now := r.now().UTC()
	o := r.o.Config.Objectives[d.Objective]
	n := action.Notice{
		Subject:  fmt.Sprintf("DR drill %s: starting", d.Name),
		Issue:    fmt.Sprintf("a planned disaster-recovery drill, %s (scenario %s); this is a drill, not an incident", d.Name, d.Scenario),
		Service:  d.Objective,
		Scenario: d.Scenario, StartedAt: run.StartedAt, SentAt: now,
		Status: fmt.Sprintf("Drill %s started by %s: %s, recovery by policy %s", run.ID, run.StartedBy, d.Inject,
			strings.Join(d.AllPolicies(), ", ")),
		ExpectedResolution: action.ExpectedResolution(run.StartedAt, time.Duration(o.RTO), now),
	}
	if kind == "end" {
		n.Subject = fmt.Sprintf("DR drill %s: %s", d.Name, run.State)
		n.Resolved, n.ResolvedAt = true, run.EndedAt
		n.Status = fmt.Sprintf("Drill %s %s: %s%s", run.ID, run.State, run.Reason, achieved(*run))
	}
	if ext := r.o.Config.Server.ExternalURL; ext != "" {
		n.URL = strings.TrimRight(ext, "/") + "/api/v1/drills/runs/" + run.ID
	}
	for _, name := range notifiers(r.o.Config, d) {
		dn := store.DrillNotice{Notifier: name, Kind: kind, At: now}
		if err := r.o.Notifiers.Send(ctx, name, n); err != nil {
			dn.Error = err.Error()
			r.log.Warn("drill announcement not delivered", "drill", d.Name, "notifier", name, "err", err)
		}
		run.Announcements = append(run.Announcements, dn)
	}
}

// achieved words a drill's measured RTO and RPO.
func achieved(d store.DrillRun) string {
	var parts []string
	if d.RTO != nil {
		parts = append(parts, fmt.Sprintf("RTO %s (objective %s)", secs(d.RTO.Seconds), fmtDur(time.Duration(d.RTO.ObjectiveSeconds*float64(time.Second)))))
	}
	if d.RPO != nil {
		parts = append(parts, fmt.Sprintf("RPO %s (objective %s)", secs(d.RPO.Seconds), fmtDur(time.Duration(d.RPO.ObjectiveSeconds*float64(time.Second)))))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

// dueAt is when a scheduled drill is next due: its period after its last
// passed run; a drill never passed is due when drguard first announced it,
// or now.
func dueAt(d config.Drill, lastPassed store.DrillRun, ann store.DrillAnnouncement, now time.Time) time.Time {
	switch {
	case !lastPassed.EndedAt.IsZero():
		return lastPassed.EndedAt.Add(time.Duration(d.Schedule.Every))
	case !ann.DueAt.IsZero():
		return ann.DueAt
	}
	return now
}

// checkSchedules announces every scheduled drill that is due within its
// announce period, once per due date (journaled, so that a restart neither
// repeats nor forgets it).
func (r *Runner) checkSchedules(ctx context.Context) {
	_, passed, err := r.lastRuns()
	if err != nil {
		r.log.Error("drill schedules: reading the journal failed; will retry", "err", err)
		return
	}
	now := r.now().UTC()
	for _, d := range r.o.Config.Drills {
		if d.Schedule == nil || ctx.Err() != nil {
			continue
		}
		var ann store.DrillAnnouncement
		if err := r.o.Store.View(func(tx *store.Tx) error {
			ann, err = tx.DrillAnnouncement(d.Name)
			return err
		}); err != nil {
			r.log.Error("drill schedules: reading the journal failed; will retry", "drill", d.Name, "err", err)
			continue
		}
		due := dueAt(d, passed[d.Name], ann, now)
		if now.Before(due.Add(-time.Duration(d.Schedule.Announce))) || ann.DueAt.Equal(due) {
			continue
		}
		if r.announceDue(ctx, d, due, now) {
			ann = store.DrillAnnouncement{Drill: d.Name, DueAt: due, SentAt: now}
			if err := r.o.Journal.Update(func(tx *store.Tx) error { return tx.PutDrillAnnouncement(ann) }); err != nil {
				r.log.Error("drill schedules: journaling the announcement failed", "drill", d.Name, "err", err)
			}
		}
	}
}

// announceDue tells the drill's notifiers that it is due. It reports
// whether one of them heard it.
func (r *Runner) announceDue(ctx context.Context, d config.Drill, due, now time.Time) bool {
	when := "is due " + due.Format("2006-01-02 15:04 MST")
	if !now.Before(due) {
		when = "is due now"
	}
	n := action.Notice{
		Subject:  fmt.Sprintf("DR drill %s %s", d.Name, when),
		Issue:    fmt.Sprintf("no incident: the scheduled disaster-recovery drill %s (scenario %s, every %s)", d.Name, d.Scenario, model.Duration(d.Schedule.Every)),
		Status:   fmt.Sprintf("The drill %s; run it with: drguard drill --execute --drill=%s", when, d.Name),
		Service:  d.Objective,
		Scenario: d.Scenario, SentAt: now, ExpectedResolution: "not applicable",
	}
	delivered := false
	for _, name := range notifiers(r.o.Config, d) {
		if err := r.o.Notifiers.Send(ctx, name, n); err != nil {
			r.log.Warn("drill due announcement not delivered; will retry", "drill", d.Name, "notifier", name, "err", err)
			continue
		}
		delivered = true
	}
	if delivered {
		r.log.Info("drill due announced", "drill", d.Name, "due", due)
	}
	return delivered
}

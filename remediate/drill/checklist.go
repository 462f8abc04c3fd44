package drill

import (
	"fmt"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// phases breaks the RTO down: the injection, detection (injection → first
// incident), decision (→ first step), each approval wait, each step, and
// verification (the last run's end → recovered_when passing).
func phases(d store.DrillRun, runs []store.Run, approvals map[string]store.Approval) []store.DrillPhase {
	var out []store.DrillPhase
	add := func(kind, name string, start, end time.Time, runID, detail string) {
		if start.IsZero() || end.IsZero() {
			return
		}
		out = append(out, store.DrillPhase{Kind: kind, Name: name, Start: start, End: end, Seconds: end.Sub(start).Seconds(), RunID: runID, Detail: detail})
	}
	if n := len(d.Injection); n > 0 {
		add(store.PhaseInjection, "injection", d.Injection[0].StartedAt, d.Injection[n-1].EndedAt, "", fmt.Sprintf("%d step(s)", n))
	}
	var detected time.Time
	for _, in := range d.Incidents {
		if detected.IsZero() || in.DetectedAt.Before(detected) {
			detected = in.DetectedAt
		}
	}
	add(store.PhaseDetection, "detection", d.InjectedAt, detected, "", fmt.Sprintf("%d incident(s)", len(d.Incidents)))
	var first, last time.Time
	for _, r := range runs {
		for _, st := range r.Steps {
			if !st.StartedAt.IsZero() && (first.IsZero() || st.StartedAt.Before(first)) {
				first = st.StartedAt
			}
		}
		if r.EndedAt.After(last) {
			last = r.EndedAt
		}
	}
	add(store.PhaseDecision, "decision", detected, first, "", "detection → first step")
	for _, r := range runs {
		for _, st := range r.Steps {
			if a, ok := approvals[st.ApprovalID]; ok && !a.DecidedAt.IsZero() {
				add(store.PhaseApproval, st.Name, a.CreatedAt, a.DecidedAt, r.ID, fmt.Sprintf("%s by %s", a.State, a.DecidedBy))
			}
			if !st.StartedAt.IsZero() {
				add(store.PhaseStep, st.Name, st.StartedAt, st.EndedAt, r.ID, fmt.Sprintf("%s (%s)", st.State, st.Action))
			}
		}
	}
	add(store.PhaseVerification, "verification", last, d.RecoveredAt, "", "last run ended → recovered_when "+d.RecoveredWhen+" passed")
	return out
}

// evidence is what the checklist is decided from, besides the drill run.
type evidence struct {
	runs      []store.Run
	incidents []store.Incident
	// recovery is recovered_when's last reason.
	recovery string
	// restored names the backup whose recovery point the serving
	// database's heartbeat equals, when it does.
	restored string
	// restoreTest is the service's last passed restore test, if any.
	restoreTest *store.RestoreTestRun
}

// Titles of the plan's testing checklist.
var checkTitles = map[string]string{
	store.CheckBackupRestoration: "Backup restoration successful",
	store.CheckFailoverWithinRTO: "Failover completed within RTO",
	store.CheckDataLossWithinRPO: "Data loss within RPO",
	store.CheckApplication:       "Application fully functional",
	store.CheckMonitoring:        "Monitoring and alerts working",
	store.CheckCommunication:     "Team communication effective",
}

// checklist decides the plan's six items, each with its evidence.
func checklist(d store.DrillRun, e evidence) []store.DrillCheck {
	item := func(key, status, format string, args ...any) store.DrillCheck {
		return store.DrillCheck{Item: key, Title: checkTitles[key], Status: status, Evidence: fmt.Sprintf(format, args...)}
	}
	var out []store.DrillCheck
	switch {
	case e.restored != "":
		out = append(out, item(store.CheckBackupRestoration, store.CheckPass, "the serving database holds backup %s: its newest heartbeat is the backup's recovery point", e.restored))
	case e.restoreTest != nil:
		rt := e.restoreTest
		out = append(out, item(store.CheckBackupRestoration, store.CheckPass, "no backup was restored in this drill; the last restore test of backup %s passed at %s in %s (recovery point %s old)",
			rt.Backup, rt.End.Format(time.RFC3339), fmtDur(rt.End.Sub(rt.Start)), fmtDur(time.Duration(rt.RecoveryPointAge*float64(time.Second)))))
	default:
		out = append(out, item(store.CheckBackupRestoration, store.CheckFail, "no backup was restored in this drill and no restore test of %s's backups has passed", d.Service))
	}
	rto := fmtDur(time.Duration(d.Objective.RTOSeconds * float64(time.Second)))
	switch {
	case d.RTO == nil:
		out = append(out, item(store.CheckFailoverWithinRTO, store.CheckFail, "not recovered: recovered_when %s did not pass (last: %s)", d.RecoveredWhen, orNone(e.recovery)))
	case d.RTO.Within:
		out = append(out, item(store.CheckFailoverWithinRTO, store.CheckPass, "recovered in %s, objective %s", secs(d.RTO.Seconds), rto))
	default:
		out = append(out, item(store.CheckFailoverWithinRTO, store.CheckFail, "recovered in %s, more than the objective %s", secs(d.RTO.Seconds), rto))
	}
	rpo := fmtDur(time.Duration(d.Objective.RPOSeconds * float64(time.Second)))
	switch {
	case d.RPO == nil && d.Heartbeat == "":
		out = append(out, item(store.CheckDataLossWithinRPO, store.CheckFail, "not measured: the drill has no heartbeat probe"))
	case d.RPO == nil:
		out = append(out, item(store.CheckDataLossWithinRPO, store.CheckFail, "not measured: %s", orNone(lastLog(d, "rpo_unmeasured"))))
	case d.RPO.Within:
		out = append(out, item(store.CheckDataLossWithinRPO, store.CheckPass, "%s of data lost, objective %s: %s", secs(d.RPO.Seconds), rpo, d.RPO.Detail))
	default:
		out = append(out, item(store.CheckDataLossWithinRPO, store.CheckFail, "%s of data lost, more than the objective %s: %s", secs(d.RPO.Seconds), rpo, d.RPO.Detail))
	}
	out = append(out, application(d, e))
	switch {
	case d.Synthetic:
		out = append(out, item(store.CheckMonitoring, store.CheckNotShown, "not shown: a synthetic drill journals the detection itself; no probe or alert had to notice anything"))
	case len(d.Incidents) == 0:
		out = append(out, item(store.CheckMonitoring, store.CheckFail, "nothing detected the injected failure: no probe or alert opened an incident before the drill ended"))
	default:
		in := d.Incidents[0]
		out = append(out, item(store.CheckMonitoring, store.CheckPass, "detected by %s %s after the injection: incident %s (%s)", in.Source, fmtDur(in.DetectedAt.Sub(d.InjectedAt)), in.ID, in.Summary))
	}
	return append(out, communication(d, e))
}

// application decides "Application fully functional": recovered_when
// passes and every run the drill requested ended well (succeeded, or
// obsolete because its alert resolved).
func application(d store.DrillRun, e evidence) store.DrillCheck {
	c := store.DrillCheck{Item: store.CheckApplication, Title: checkTitles[store.CheckApplication], Status: store.CheckPass}
	var bad, good []string
	for _, r := range e.runs {
		switch r.State {
		case store.RunSucceeded, store.RunObsolete:
			good = append(good, fmt.Sprintf("%s (%s) %s", r.ID, r.Policy, r.State))
		default:
			bad = append(bad, fmt.Sprintf("%s (%s) %s: %s", r.ID, r.Policy, r.State, r.Reason))
		}
	}
	switch {
	case d.RecoveredAt.IsZero():
		c.Status, c.Evidence = store.CheckFail, fmt.Sprintf("recovered_when %s does not pass: %s", d.RecoveredWhen, orNone(e.recovery))
		if len(bad) > 0 {
			c.Evidence += "; runs did not complete: " + strings.Join(bad, "; ")
		}
	case len(e.runs) == 0:
		c.Status, c.Evidence = store.CheckFail, "no recovery run was started"
	case len(bad) > 0:
		c.Status, c.Evidence = store.CheckFail, "recovered_when passes, but runs did not complete: "+strings.Join(bad, "; ")
	default:
		c.Evidence = fmt.Sprintf("recovered_when %s passes%s; runs %s", d.RecoveredWhen, parens(e.recovery), strings.Join(good, ", "))
	}
	return c
}

// communication decides "Team communication effective": the drill's
// announcement reached every notifier, every notify step delivered, and
// the status updates sent are counted.
func communication(d store.DrillRun, e evidence) store.DrillCheck {
	c := store.DrillCheck{Item: store.CheckCommunication, Title: checkTitles[store.CheckCommunication], Status: store.CheckPass}
	var failed, sent []string
	for _, n := range d.Announcements {
		if n.Error != "" {
			failed = append(failed, fmt.Sprintf("announcement to %s: %s", n.Notifier, n.Error))
		} else if n.Kind == "start" {
			sent = append(sent, "announced to "+n.Notifier)
		}
	}
	steps := 0
	for _, r := range e.runs {
		for _, st := range r.Steps {
			if !strings.HasPrefix(st.Action, "notify.") {
				continue
			}
			switch st.State {
			case store.StepSucceeded:
				steps++
			case store.StepFailed, store.StepInterrupted:
				failed = append(failed, fmt.Sprintf("notify step %s of %s: %s", st.Name, r.ID, st.Error))
			}
		}
	}
	updates := 0
	for _, in := range e.incidents {
		for _, ev := range in.Timeline {
			if ev.Kind == "status_update" || ev.Kind == "resolution_notice" {
				updates++
			}
		}
	}
	sent = append(sent, fmt.Sprintf("%d notify step(s) delivered", steps), fmt.Sprintf("%d status update(s) sent", updates))
	switch {
	case len(failed) > 0:
		c.Status, c.Evidence = store.CheckFail, strings.Join(failed, "; ")
	case len(d.Announcements) == 0 && steps == 0:
		c.Status, c.Evidence = store.CheckFail, "nobody was told: the drill's policies use no notifier"
	default:
		c.Evidence = strings.Join(sent, "; ")
	}
	return c
}

// lastLog returns the message of the last log event of kind.
func lastLog(d store.DrillRun, kind string) string {
	for i := len(d.Log) - 1; i >= 0; i-- {
		if d.Log[i].Kind == kind {
			return d.Log[i].Message
		}
	}
	return ""
}

// parens writes " (s)", or nothing when s is empty.
func parens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func orNone(s string) string {
	if s == "" {
		return "no result"
	}
	return s
}

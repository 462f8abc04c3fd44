package postmortem

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate"
)

// IncidentMarkdown writes an incident's post-mortem: the plan's template
// (summary, timeline, impact, root cause, what went well, what went
// wrong, action items, lessons learned) filled from the records, and the
// audit trail. The same records always give the same text.
func IncidentMarkdown(in Incident) string {
	var d doc
	inc := in.Incident
	d.f("# Incident Post-Mortem: %s\n\n", inc.ID)
	d.f("> Written by drguard from its journal. Parts marked %s are for the people who handled the incident.\n", BlankText)
	if in.Drill != nil {
		d.f(">\n> This incident was caused by DR drill **%s** (run %s); it is not a real outage. The drill's own post-mortem is `drguard postmortem --drill-run=%s`.\n",
			in.Drill.Drill, in.Drill.ID, in.Drill.ID)
	}
	d.section("Summary")
	writeSummary(&d, in)
	d.section("Timeline")
	var t timeline
	incidentTimeline(in, &t)
	d.list(t.sorted(), "nothing was journaled")
	d.section("Impact")
	d.list([]string{
		"Duration: " + duration(inc),
		"Users affected: " + blank(""),
		"Data loss: " + dataLoss([]Incident{in}, in.Drill),
		"Financial impact: " + blank(""),
	}, "")
	d.section("Root Cause")
	d.f("%s\n", blank("What caused it, and why it was not prevented."))
	d.f("\n### Evidence\n\n")
	writeEvidence(&d, in)
	var f findings
	incidentFindings(in, &f)
	writeFindings(&d, f)
	writeAudit(&d, in.Audit)
	return d.String()
}

// writeSummary writes what happened in a few lines and a table.
func writeSummary(d *doc, in Incident) {
	inc := in.Incident
	d.f("%s\n\n", summaryText(in))
	d.f("| | |\n|---|---|\n")
	d.f("| Incident | %s (%s) |\n", inc.ID, inc.State)
	for _, k := range []string{"service", "scenario", "severity", "target"} {
		if v := inc.Labels[k]; v != "" {
			d.f("| %s | %s |\n", strings.ToUpper(k[:1])+k[1:], cell(v))
		}
	}
	d.f("| Source | %s, fingerprint %s |\n", cell(inc.Source), cell(inc.Fingerprint))
	d.f("| Labels | %s |\n", cell(remediate.LabelText(inc.Labels)))
	d.f("| Detected | %s |\n", ts(inc.FirstSeen))
	d.f("| Resolved | %s |\n", ts(inc.ResolvedAt))
	d.f("| Alert | %s, %s after the first |\n", cell(inc.AlertStatus), plural(inc.Repeats, "repeat"))
	for _, r := range in.Runs {
		d.f("| Run %s | policy %s on %s: %s%s |\n", r.ID, cell(r.Policy), cell(r.Target), r.State, cell(because(r.Reason)))
	}
}

// summaryText tells the incident in a sentence or two.
func summaryText(in Incident) string {
	inc := in.Incident
	var b strings.Builder
	fmt.Fprintf(&b, "%s.", strings.TrimSuffix(summary(inc), "."))
	switch n := len(in.Runs); n {
	case 0:
		b.WriteString(" drguard ran no remediation.")
	default:
		states := map[store.RunState]int{}
		for _, r := range in.Runs {
			states[r.State]++
		}
		var parts []string
		for _, s := range slices.Sorted(maps.Keys(states)) {
			parts = append(parts, fmt.Sprintf("%d %s", states[s], s))
		}
		fmt.Fprintf(&b, " drguard ran %s (%s).", plural(n, "remediation run"), strings.Join(parts, ", "))
	}
	if inc.State == store.IncidentResolved {
		fmt.Fprintf(&b, " The incident resolved %s after it was detected.", dur(inc.ResolvedAt.Sub(inc.FirstSeen)))
	} else {
		b.WriteString(" The incident is still open.")
	}
	return b.String()
}

// duration is the incident's length, from its start to its resolution.
func duration(inc store.Incident) string {
	start := inc.FirstSeen
	if !inc.StartsAt.IsZero() && inc.StartsAt.Before(start) {
		start = inc.StartsAt
	}
	if inc.State != store.IncidentResolved {
		return fmt.Sprintf("still open: began %s, last seen %s", ts(start), ts(inc.LastSeen))
	}
	return fmt.Sprintf("%s (%s to %s)", dur(inc.ResolvedAt.Sub(start)), ts(start), ts(inc.ResolvedAt))
}

// dataLoss says how much data was lost: the drill's measured RPO, or what
// the recovery steps recorded of their recovery source (the backup's
// newest heartbeat, the replica's lag, the restore time), else a blank.
func dataLoss(ins []Incident, drill *store.DrillRun) string {
	var parts []string
	if drill != nil && drill.RPO != nil {
		parts = append(parts, fmt.Sprintf("%s, measured by drill %s from the heartbeat (%s)",
			measure(drill.RPO, drill.Objective.RPOSeconds), drill.ID, oneLine(drill.RPO.Detail)))
	}
	for _, in := range ins {
		for _, r := range in.Runs {
			for _, s := range r.Steps {
				if s.State == store.StepSucceeded {
					if src := recoverySource(in.Incident, s); src != "" {
						parts = append(parts, src)
					}
				}
			}
		}
	}
	if len(parts) == 0 {
		return blank("(no step recorded a recovery point: say whether data was lost, and how much)")
	}
	return strings.Join(parts, "; ")
}

// recoverySource is what a recovery step recorded about the data it
// recovered, or "".
func recoverySource(inc store.Incident, s store.Step) string {
	res := s.Result
	if rp, ok := res["recovery_point"].(string); ok {
		out := fmt.Sprintf("step %s restored backup %v, whose newest data is from %s", s.Name, res["backup_id"], rp)
		if t, err := time.Parse(time.RFC3339Nano, rp); err == nil && !inc.StartsAt.IsZero() {
			out += fmt.Sprintf(": up to %s before the failure began is lost", dur(inc.StartsAt.Sub(t)))
		}
		return out
	}
	if promoted, _ := res["promoted"].(bool); promoted {
		lag, _ := res["lag_seconds"].(float64)
		return fmt.Sprintf("step %s promoted replica %v with a replication lag of %s (%v; %v bytes not replayed): about that much is lost",
			s.Name, res["target"], dur(seconds(lag)), res["lag_source"], res["replay_lag_bytes"])
	}
	if at, ok := res["restore_time"].(string); ok {
		return fmt.Sprintf("step %s restored %v to the point in time %s (%v): writes after it are lost", s.Name, res["source_instance"], at, res["restore_time_source"])
	}
	return ""
}

// writeEvidence writes what the journal holds towards the root cause:
// the alert's annotations (a probe's failure reason among them), the
// steps' errors and excerpts of their output (captured logs included).
func writeEvidence(d *doc, in Incident) {
	inc := in.Incident
	if len(inc.Annotations) == 0 {
		d.f("- The alert carried no annotations.\n")
	}
	for _, k := range slices.Sorted(maps.Keys(inc.Annotations)) {
		d.f("- Annotation `%s`: %s\n", k, oneLine(inc.Annotations[k]))
	}
	for _, r := range in.Runs {
		for _, s := range r.Steps {
			if s.Error != "" {
				d.f("- Step %s (%s) of run %s failed: %s\n", s.Name, s.Action, r.ID, oneLine(s.Error))
			}
		}
	}
	for _, r := range in.Runs {
		for _, s := range r.Steps {
			if strings.TrimSpace(s.Output) == "" {
				continue
			}
			d.f("\nOutput of step %s (%s) of run %s:\n\n%s", s.Name, s.Action, r.ID, excerpt(s.Output))
		}
	}
}

// writeFindings writes what went well, what went wrong and the action
// items, then the blank for lessons learned.
func writeFindings(d *doc, f findings) {
	d.section("What Went Well")
	d.list(f.well, "Nothing the journal can show. "+BlankText)
	d.section("What Went Wrong")
	d.list(f.wrong, "Nothing the journal recorded. "+BlankText)
	d.section("Action Items")
	if len(f.actions) == 0 {
		d.f("- [ ] %s\n", BlankText)
	}
	for _, a := range f.actions {
		d.f("- [ ] %s\n", a)
	}
	d.section("Lessons Learned")
	d.f("%s\n", BlankText)
}

// writeAudit writes the audit trail of the incident as a table: by time,
// then by run (the incident's own entries first), then in log order. The
// log's order between the entries of two runs written in the same second
// is the order in which their transactions happened to commit; sorting
// by run makes the same records always read the same.
func writeAudit(d *doc, audit []store.AuditEntry) {
	d.section("Audit Trail")
	if len(audit) == 0 {
		d.f("No audit entries.\n")
		return
	}
	audit = slices.Clone(audit)
	slices.SortStableFunc(audit, func(a, b store.AuditEntry) int {
		at, bt := a.Time.Truncate(time.Second), b.Time.Truncate(time.Second)
		if c := at.Compare(bt); c != 0 {
			return c
		}
		if c := cmp.Compare(runOf(a), runOf(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	d.f("| time | actor | action | subject | from | detail |\n|---|---|---|---|---|---|\n")
	for _, e := range audit {
		d.f("| %s | %s | %s | %s | %s | %s |\n", ts(e.Time), cell(e.Actor), cell(e.Action), cell(e.Subject), cell(e.Remote), cell(detailText(e.Detail)))
	}
}

// runOf is the run an audit entry is about, "" for the incident's own.
func runOf(e store.AuditEntry) string {
	if r := e.Detail["run"]; r != "" {
		return r
	}
	if strings.HasPrefix(e.Subject, "run-") {
		return e.Subject
	}
	return ""
}

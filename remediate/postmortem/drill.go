package postmortem

import (
	"fmt"
	"strings"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// DrillMarkdown writes a drill run's post-mortem: the plan's template for
// the simulated incident, with the drill's report in it — the RTO and RPO
// achieved against the objective, the testing checklist, the time to
// recover by phase — and the incidents the injection caused.
func DrillMarkdown(dr Drill) string {
	var d doc
	run := dr.Run
	d.f("# Drill Post-Mortem: %s (drill %s)\n\n", run.ID, run.Drill)
	d.f("> Written by drguard from its journal. This was a DR drill, not a real outage. Parts marked %s are for the drill's participants.\n", BlankText)
	d.section("Summary")
	d.f("%s\n\n", drillSummary(dr))
	d.f("| | |\n|---|---|\n")
	d.f("| Drill run | %s: %s |\n", run.ID, run.State)
	d.f("| Scenario | %s (service %s) |\n", cell(run.Scenario), cell(run.Service))
	d.f("| Started | %s by %s%s |\n", ts(run.StartedAt), cell(run.StartedBy), cell(from(run.StartedFrom)))
	d.f("| Ended | %s |\n", ts(run.EndedAt))
	d.f("| Recovery | policy %s, runs requested by %s%s |\n", cell(strings.Join(run.Policies, ", ")), cell(run.RequestedBy),
		map[bool]string{true: ", gated steps auto-approved", false: ", gated steps approved by people"}[run.AutoApprove])
	d.f("| Injection | %s |\n", injection(run))
	d.f("| Result | %s |\n", cell(run.Reason))
	d.section("Timeline")
	var t timeline
	for _, e := range run.Log { // announced, injected (each step's result), correlated, recovered, ended
		t.add(e.Time, "Drill: %s", e.Message)
	}
	for _, in := range dr.Incidents {
		incidentTimeline(in, &t)
	}
	d.list(t.sorted(), "nothing was journaled")
	d.section("Impact")
	d.list([]string{
		"Duration (RTO achieved): " + measure(run.RTO, run.Objective.RTOSeconds),
		"Users affected: " + blank("(a drill: say whether anyone noticed)"),
		"Data loss (RPO achieved): " + dataLoss(dr.Incidents, &run),
		"Financial impact: " + blank(""),
	}, "")
	writeObjectives(&d, run)
	d.section("Root Cause")
	d.f("The failure was injected by the drill: %s. %s\n", injection(run), blank("Why recovery went as it did."))
	d.f("\n### Evidence\n\n")
	if len(dr.Incidents) == 0 {
		d.f("- No incident was opened: the failure was not detected.\n")
	}
	for i, in := range dr.Incidents {
		if i > 0 {
			d.f("\n")
		}
		d.f("#### Incident %s\n\n", in.Incident.ID)
		writeEvidence(&d, in)
	}
	var f findings
	drillFindings(dr, &f)
	writeFindings(&d, f)
	return d.String()
}

// drillSummary tells the drill in a sentence or two.
func drillSummary(dr Drill) string {
	run := dr.Run
	s := fmt.Sprintf("DR drill %s (scenario %s) %s: %s.", run.Drill, orNone(run.Scenario), run.State, strings.TrimSuffix(orNone(run.Reason), "."))
	passed := 0
	for _, c := range run.Checklist {
		if c.Status == store.CheckPass {
			passed++
		}
	}
	return s + fmt.Sprintf(" RTO %s, RPO %s; %d of %d checklist items passed.", measure(run.RTO, run.Objective.RTOSeconds),
		measure(run.RPO, run.Objective.RPOSeconds), passed, len(run.Checklist))
}

// injection says how the drill caused the failure.
func injection(run store.DrillRun) string {
	if run.Synthetic {
		return "a synthetic detection (tabletop drill), journaled at " + ts(run.InjectedAt)
	}
	var steps []string
	for _, s := range run.Injection {
		steps = append(steps, fmt.Sprintf("%s (%s)", s.Name, s.Action))
	}
	return fmt.Sprintf("%s at %s", orNone(strings.Join(steps, ", ")), ts(run.InjectedAt))
}

// measure writes a measured duration against its objective.
func measure(m *store.DrillMeasure, objective float64) string {
	if m == nil {
		return fmt.Sprintf("not measured (objective %s)", dur(seconds(objective)))
	}
	return fmt.Sprintf("%s against an objective of %s %s", dur(seconds(m.Seconds)), dur(seconds(m.ObjectiveSeconds)), mark(m.Within))
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// writeObjectives writes the drill's report: objectives, the checklist
// and the phases of the time to recover.
func writeObjectives(d *doc, run store.DrillRun) {
	d.section("RTO and RPO")
	d.f("| | achieved | objective | within | measured |\n|---|---|---|---|---|\n")
	for _, m := range []struct {
		name string
		m    *store.DrillMeasure
		obj  float64
	}{{"RTO", run.RTO, run.Objective.RTOSeconds}, {"RPO", run.RPO, run.Objective.RPOSeconds}} {
		if m.m == nil {
			d.f("| %s | not measured | %s | ✗ | – |\n", m.name, dur(seconds(m.obj)))
			continue
		}
		d.f("| %s | %s | %s | %s | %s (%s to %s) |\n", m.name, dur(seconds(m.m.Seconds)), dur(seconds(m.m.ObjectiveSeconds)),
			mark(m.m.Within), cell(m.m.Detail), ts(m.m.From), ts(m.m.To))
	}
	d.section("Testing Checklist")
	if len(run.Checklist) == 0 {
		d.f("- The drill did not reach its checklist.\n")
	}
	for _, c := range run.Checklist {
		box := map[string]string{store.CheckPass: "[x] ✓", store.CheckNotShown: "[ ] – (not shown)"}[c.Status]
		if box == "" {
			box = "[ ] ✗"
		}
		d.f("- %s %s: %s\n", box, c.Title, oneLine(c.Evidence))
	}
	if len(run.Phases) > 0 {
		d.section("Time to Recover, by Phase")
		d.f("| phase | name | start | end | duration | detail |\n|---|---|---|---|---|---|\n")
		for _, p := range run.Phases {
			d.f("| %s | %s | %s | %s | %s | %s |\n", p.Kind, cell(p.Name), ts(p.Start), ts(p.End), dur(seconds(p.Seconds)),
				cell(strings.TrimSpace(p.RunID+" "+p.Detail)))
		}
	}
}

// drillFindings derives what went well and wrong in a drill: its
// checklist, objectives, injection and announcements, then its incidents.
func drillFindings(dr Drill, f *findings) {
	run := dr.Run
	for _, c := range run.Checklist {
		switch c.Status {
		case store.CheckPass:
			f.good("✓ %s: %s", c.Title, oneLine(c.Evidence))
		case store.CheckNotShown:
			f.failure(fmt.Sprintf("– %s was not shown: %s", c.Title, oneLine(c.Evidence)),
				fmt.Sprintf("Show \"%s\" in the next run of drill %s (%s)", c.Title, run.Drill, oneLine(c.Evidence)))
		default:
			f.failure(fmt.Sprintf("✗ %s: %s", c.Title, oneLine(c.Evidence)),
				fmt.Sprintf("Make \"%s\" pass in drill %s: %s", c.Title, run.Drill, oneLine(c.Evidence)))
		}
	}
	switch run.State {
	case store.DrillAborted:
		f.failure(fmt.Sprintf("The drill was aborted by %s: %s", orNone(run.AbortedBy), oneLine(run.Reason)),
			fmt.Sprintf("Record why drill %s was aborted and run it again", run.Drill))
	case store.DrillInterrupted:
		f.failure(fmt.Sprintf("The drill was interrupted: %s", oneLine(run.Reason)),
			fmt.Sprintf("Run drill %s again: drguard stopped during it", run.Drill))
	}
	for _, s := range run.Injection {
		if s.State == store.StepFailed {
			f.failure(fmt.Sprintf("Injection step %s (%s) failed: %s", s.Name, s.Action, oneLine(s.Error)),
				fmt.Sprintf("Fix injection step %s of drill %s: %s", s.Name, run.Drill, oneLine(s.Error)))
		}
	}
	for _, n := range run.Announcements {
		if n.Error != "" {
			f.failure(fmt.Sprintf("The drill's %s announcement to %s was not delivered: %s", n.Kind, n.Notifier, oneLine(n.Error)),
				fmt.Sprintf("Fix notifier %s: %s", n.Notifier, oneLine(n.Error)))
		}
	}
	for _, in := range dr.Incidents {
		incidentFindings(in, f)
	}
}

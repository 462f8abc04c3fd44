package drill

import (
	"fmt"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// Markdown renders a drill run's report from its journal record: the
// result, the RTO and RPO against the objectives, the plan's testing
// checklist with its evidence, the RTO broken into phases, the incidents
// and runs, the injection, the communication and the drill's log.
func Markdown(d store.DrillRun) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# DR drill %s: %s\n\n", d.Drill, d.State)
	w("| | |\n|---|---|\n")
	w("| Drill run | %s (scenario %s, service %s) |\n", d.ID, cell(d.Scenario), cell(d.Service))
	w("| Started | %s by %s |\n", ts(d.StartedAt), cell(d.StartedBy))
	if !d.EndedAt.IsZero() {
		w("| Ended | %s (%s) |\n", ts(d.EndedAt), fmtDur(d.EndedAt.Sub(d.StartedAt)))
	}
	w("| Recovery | policy %s, runs requested by %s%s |\n", cell(strings.Join(d.Policies, ", ")), cell(d.RequestedBy), map[bool]string{true: ", gated steps auto-approved", false: ""}[d.AutoApprove])
	injection := "synthetic detection (tabletop drill)"
	if !d.Synthetic {
		injection = fmt.Sprintf("%d step(s)", len(d.Injection))
	}
	w("| Injection | %s, at %s |\n", injection, ts(d.InjectedAt))
	w("| Result | %s |\n\n", cell(d.Reason))

	w("## Objectives\n\n| | achieved | objective | |\n|---|---|---|---|\n")
	w("| RTO | %s | %s | %s |\n", measured(d.RTO), fmtDur(seconds(d.Objective.RTOSeconds)), mark(d.RTO != nil && d.RTO.Within))
	w("| RPO | %s | %s | %s |\n\n", measured(d.RPO), fmtDur(seconds(d.Objective.RPOSeconds)), mark(d.RPO != nil && d.RPO.Within))
	if d.RTO != nil {
		w("RTO: %s, from %s to %s.\n", cell(d.RTO.Detail), ts(d.RTO.From), ts(d.RTO.To))
	}
	if d.RPO != nil {
		w("RPO: %s.\n", cell(d.RPO.Detail))
	}
	w("\n## Testing checklist\n\n")
	for _, c := range d.Checklist {
		w("- %s %s: %s\n", statusMark(c.Status), c.Title, c.Evidence)
	}
	if len(d.Phases) > 0 {
		w("\n## Time to recover, by phase\n\n| phase | name | start | end | duration | detail |\n|---|---|---|---|---|---|\n")
		for _, p := range d.Phases {
			w("| %s | %s | %s | %s | %s | %s |\n", p.Kind, cell(p.Name), clock(p.Start), clock(p.End), secs(p.Seconds), cell(strings.TrimSpace(p.RunID+" "+p.Detail)))
		}
	}
	w("\n## Incidents\n\n")
	if len(d.Incidents) == 0 {
		w("None: nothing opened an incident.\n")
	}
	for _, in := range d.Incidents {
		w("- %s (%s, detected %s): %s; runs %s%s\n", in.ID, in.Source, ts(in.DetectedAt), in.Summary, orDash(strings.Join(in.Runs, ", ")), errSuffix(in.Error))
	}
	if len(d.Injection) > 0 {
		w("\n## Injection\n\n| step | action | result | started | ended | detail |\n|---|---|---|---|---|---|\n")
		for _, s := range d.Injection {
			detail := s.Error
			if detail == "" {
				detail = firstLine(s.Output)
			}
			w("| %s | %s | %s | %s | %s | %s |\n", cell(s.Name), s.Action, s.State, clock(s.StartedAt), clock(s.EndedAt), cell(detail))
		}
	}
	if len(d.Announcements) > 0 {
		w("\n## Announcements\n\n")
		for _, n := range d.Announcements {
			result := "delivered"
			if n.Error != "" {
				result = "not delivered: " + n.Error
			}
			w("- %s, %s to %s: %s\n", clock(n.At), n.Kind, n.Notifier, result)
		}
	}
	w("\n## Log\n\n")
	for _, e := range d.Log {
		w("- %s %s: %s\n", clock(e.Time), e.Kind, e.Message)
	}
	return b.String()
}

// mark is ✓ or ✗.
func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// statusMark writes a checklist status as the plan's check box.
func statusMark(s string) string {
	switch s {
	case store.CheckPass:
		return "[x] ✓"
	case store.CheckNotShown:
		return "[ ] – (not shown)"
	}
	return "[ ] ✗"
}

// measured writes a measure, or says it was not measured.
func measured(m *store.DrillMeasure) string {
	if m == nil {
		return "not measured"
	}
	return secs(m.Seconds)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// ts writes a time in UTC to the millisecond.
func ts(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// clock writes a time of day in UTC to the millisecond.
func clock(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("15:04:05.000")
}

// cell makes text safe in a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// bound cuts s to what the journal keeps of an injection's output.
func bound(s string) string {
	const max = 16 << 10
	if len(s) <= max {
		return s
	}
	return s[:max] + fmt.Sprintf("…[truncated %d bytes]", len(s)-max)
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return "; not started: " + e
}

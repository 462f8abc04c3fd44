package postmortem

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate"
)

// entry is one dated line of a post-mortem's timeline.
type entry struct {
	at   time.Time
	text string
}

// timeline collects entries and sorts them by time, keeping the order in
// which they were added among entries of the same time.
type timeline []entry

func (t *timeline) add(at time.Time, format string, args ...any) {
	if at.IsZero() {
		return
	}
	*t = append(*t, entry{at: at, text: fmt.Sprintf(format, args...)})
}

func (t timeline) sorted() []string {
	sort.SliceStable(t, func(i, j int) bool { return t[i].at.Before(t[j].at) })
	out := make([]string, len(t))
	for i, e := range t {
		out[i] = "**" + ts(e.at) + "**: " + e.text
	}
	return out
}

// covered are the incident timeline's event kinds that the post-mortem
// writes from the runs, steps and approvals themselves; every other kind
// (status updates, escalations, corroboration, the alert's resolution…)
// is copied as journaled.
var covered = map[string]bool{
	"received": true, "resolved": true,
	"run_started": true, "run_succeeded": true, "run_failed": true, "run_blocked": true, "run_dry_run": true,
	"run_rejected": true, "run_expired": true, "run_obsolete": true, "run_interrupted": true,
	"step_started": true, "step_succeeded": true, "step_failed": true, "step_blocked": true, "interrupted": true,
	"approval_requested": true, "approved": true, "rejected": true, "expired": true, "approval_obsolete": true,
	"approval_vote": true,
}

// incidentTimeline is the incident's story: detected, response initiated,
// every step with its result, every approval with who and when, status
// updates sent, resolved.
func incidentTimeline(in Incident, t *timeline) {
	inc := in.Incident
	t.add(inc.FirstSeen, "Incident %s detected (%s): %s", inc.ID, inc.Source, summary(inc))
	if !inc.StartsAt.IsZero() && inc.StartsAt.Before(inc.FirstSeen) {
		t.add(inc.StartsAt, "Condition of incident %s began (the alert's start)", inc.ID)
	}
	for i, r := range in.Runs {
		what := "Response initiated"
		if i > 0 {
			what = "Further response"
		}
		t.add(r.CreatedAt, "%s: run %s of policy %s on %s planned (%s, requested by %s)",
			what, r.ID, r.Policy, orNone(r.Target), plural(len(r.Steps), "step"), orNone(r.RequestedBy))
		for _, s := range r.Steps {
			stepTimeline(r, s, in.Approvals, t)
		}
		if !r.Active() {
			t.add(r.EndedAt, "Run %s ended %s%s", r.ID, r.State, because(r.Reason))
		}
	}
	for _, e := range inc.Timeline {
		if !covered[e.Kind] {
			t.add(e.Time, "%s: %s", kindText(e.Kind), e.Message)
		}
	}
	if inc.State == store.IncidentResolved {
		t.add(inc.ResolvedAt, "Resolution completed: incident %s resolved", inc.ID)
	}
}

// stepTimeline adds a step's approval, start and result.
func stepTimeline(r store.Run, s store.Step, approvals map[string]store.Approval, t *timeline) {
	if a, ok := approvals[s.ApprovalID]; ok {
		approvalTimeline(a, t)
	}
	name := fmt.Sprintf("step %s (%s) of run %s", s.Name, s.Action, r.ID)
	t.add(s.StartedAt, "%s started%s", name, attempts(s.Attempts))
	switch s.State {
	case store.StepSucceeded:
		t.add(s.EndedAt, "%s succeeded%s", name, after(s))
	case store.StepFailed, store.StepInterrupted:
		t.add(endOrStart(s), "%s %s%s: %s", name, s.State, after(s), oneLine(stepError(s)))
	case store.StepBlocked, store.StepSkipped, store.StepObsolete, store.StepDryRun:
		t.add(endOrStart(s), "%s %s%s", name, s.State, because(s.Reason))
	}
}

// approvalTimeline adds an approval's request, votes and decision.
func approvalTimeline(a store.Approval, t *timeline) {
	t.add(a.CreatedAt, "Approval %s of step %s requested (%s), expiring %s", a.ID, a.Step,
		plural(max(a.Required, 1), "approval")+" needed", ts(a.ExpiresAt))
	final := a.State == store.ApprovalApproved && len(a.Votes) > 0
	for i, v := range a.Votes {
		if final && i == len(a.Votes)-1 && v.Actor == a.DecidedBy {
			break // the decision below says it
		}
		t.add(v.At, "Approval %s: approved by %s%s%s", a.ID, v.Actor, from(v.Remote), comment(v.Comment))
	}
	switch a.State {
	case store.ApprovalPending:
	case store.ApprovalExpired, store.ApprovalObsolete:
		t.add(a.DecidedAt, "Approval %s %s after %s with %d of %d approvals", a.ID, a.State,
			dur(a.DecidedAt.Sub(a.CreatedAt)), len(a.Votes), max(a.Required, 1))
	default:
		t.add(a.DecidedAt, "Approval %s %s by %s%s%s after %s", a.ID, a.State, a.DecidedBy, from(a.DecidedFrom),
			comment(a.Comment), dur(a.DecidedAt.Sub(a.CreatedAt)))
	}
}

// summary is what the incident was about, in one line.
func summary(inc store.Incident) string {
	if s := inc.Annotations["summary"]; s != "" {
		return oneLine(s)
	}
	parts := []string{inc.Labels["alertname"]}
	if t := inc.Labels["target"]; t != "" {
		parts = append(parts, "on "+t)
	}
	if s := strings.TrimSpace(strings.Join(parts, " ")); s != "" {
		return s
	}
	return remediate.LabelText(inc.Labels)
}

// kindText writes an event kind as words: "status_update" → "Status update".
func kindText(kind string) string {
	s := strings.ReplaceAll(kind, "_", " ")
	if s == "" {
		return "Event"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// stepError is why a step failed: its error, else its reason.
func stepError(s store.Step) string {
	if s.Error != "" {
		return s.Error
	}
	if s.Reason != "" {
		return s.Reason
	}
	return "no error was recorded"
}

func endOrStart(s store.Step) time.Time {
	if !s.EndedAt.IsZero() {
		return s.EndedAt
	}
	return s.StartedAt
}

func after(s store.Step) string {
	if s.StartedAt.IsZero() || s.EndedAt.IsZero() {
		return ""
	}
	return " after " + dur(s.EndedAt.Sub(s.StartedAt))
}

func attempts(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" (attempt %d)", n)
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + oneLine(reason)
}

func from(remote string) string {
	if remote == "" {
		return ""
	}
	return " from " + remote
}

func comment(c string) string {
	if c == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", oneLine(c))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// sortedApprovals lists approvals by ID.
func sortedApprovals(m map[string]store.Approval) []store.Approval {
	out := make([]store.Approval, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

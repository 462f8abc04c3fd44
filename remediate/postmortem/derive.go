package postmortem

import (
	"fmt"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate"
)

// findings are what went well, what went wrong, and one action item per
// failure, derived from the records.
type findings struct {
	well, wrong, actions []string
}

func (f *findings) good(format string, args ...any) {
	f.well = append(f.well, fmt.Sprintf(format, args...))
}

// note is something that went wrong without being a failure to act on.
func (f *findings) note(format string, args ...any) {
	f.wrong = append(f.wrong, fmt.Sprintf(format, args...))
}

// failure is something that went wrong, with its action item.
func (f *findings) failure(wrong, action string) {
	f.wrong = append(f.wrong, wrong)
	f.actions = append(f.actions, action)
}

// incidentFindings derives what went well and wrong in an incident.
func incidentFindings(in Incident, f *findings) {
	inc := in.Incident
	if len(in.Runs) > 0 {
		f.good("Incident %s was detected by %s at %s; the response (run %s) began %s later", inc.ID, inc.Source,
			ts(inc.FirstSeen), in.Runs[0].ID, dur(in.Runs[0].CreatedAt.Sub(inc.FirstSeen)))
	}
	for _, e := range inc.Timeline {
		switch e.Kind {
		case "no_match":
			f.failure(fmt.Sprintf("No policy matched incident %s: nothing was run (%s)", inc.ID, remediate.LabelText(inc.Labels)),
				fmt.Sprintf("Write a policy for incident %s's alert (%s), or stop alerting on it", inc.ID, summary(inc)))
		case "not_corroborated":
			f.failure(fmt.Sprintf("Incident %s: %s", inc.ID, e.Message),
				fmt.Sprintf("Review the corroboration of incident %s's policy: %s", inc.ID, e.Message))
		}
	}
	for _, r := range in.Runs {
		runFindings(r, in.Approvals, f)
	}
	approvalFindings(in, f)
	if n, who := statusUpdates(in); n > 0 {
		f.good("%s sent to %s", plural(n, "status update"), strings.Join(who, ", "))
	}
	for _, e := range in.Audit {
		if e.Action == "transition.refused" {
			f.failure(fmt.Sprintf("drguard refused an illegal state change of %s at %s (%s)", e.Subject, ts(e.Time), detailText(e.Detail)),
				fmt.Sprintf("Report the refused state change of %s (audit entry %d) to drguard's maintainers", e.Subject, e.Seq))
		}
	}
	if inc.State == store.IncidentResolved {
		f.good("Incident %s resolved %s after it was detected", inc.ID, dur(inc.ResolvedAt.Sub(inc.FirstSeen)))
	} else {
		f.failure(fmt.Sprintf("Incident %s is still open (alert %s, last seen %s)", inc.ID, orNone(inc.AlertStatus), ts(inc.LastSeen)),
			fmt.Sprintf("Bring incident %s to resolution, or record why it stays open", inc.ID))
	}
}

// runFindings derives a run's results, step by step.
func runFindings(r store.Run, approvals map[string]store.Approval, f *findings) {
	failedStep := false
	for _, s := range r.Steps {
		where := fmt.Sprintf("step %s (%s) of run %s, policy %s", s.Name, s.Action, r.ID, r.Policy)
		switch s.State {
		case store.StepSucceeded:
			verified := ""
			if s.Verify != nil {
				verified = fmt.Sprintf("; verification by probe %s passed", s.Verify.Probe)
			}
			f.good("Step %s (%s) of run %s succeeded%s%s", s.Name, s.Action, r.ID, after(s), verified)
		case store.StepFailed:
			failedStep = true
			stepFailure(r, s, where, f)
		case store.StepInterrupted:
			failedStep = true
			f.failure(fmt.Sprintf("The %s was interrupted: drguard stopped while it ran", where),
				fmt.Sprintf("Check by hand what the interrupted %s did; mark it idempotent if a retry is safe", where))
		case store.StepBlocked:
			failedStep = true
			f.failure(fmt.Sprintf("A guardrail blocked the %s: %s", where, oneLine(s.Reason)),
				fmt.Sprintf("Review the guardrail that blocked the %s (%s)", where, oneLine(s.Reason)))
		}
	}
	switch r.State {
	case store.RunSucceeded:
		f.good("Run %s of policy %s on %s succeeded%s", r.ID, r.Policy, orNone(r.Target), because(r.Reason))
	case store.RunBlocked:
		if !failedStep {
			f.failure(fmt.Sprintf("A guardrail blocked run %s of policy %s on %s: %s", r.ID, r.Policy, orNone(r.Target), oneLine(r.Reason)),
				fmt.Sprintf("Review the guardrail that blocked policy %s on %s (%s)", r.Policy, orNone(r.Target), oneLine(r.Reason)))
		}
	case store.RunFailed, store.RunInterrupted:
		if !failedStep {
			f.failure(fmt.Sprintf("Run %s of policy %s ended %s: %s", r.ID, r.Policy, r.State, oneLine(r.Reason)),
				fmt.Sprintf("Find why run %s of policy %s ended %s (%s)", r.ID, r.Policy, r.State, oneLine(r.Reason)))
		}
	}
}

// stepFailure words a failed step: timed out, failed its verification,
// or failed.
func stepFailure(r store.Run, s store.Step, where string, f *findings) {
	msg := oneLine(stepError(s))
	switch {
	case s.Failure == store.FailureTimedOut:
		f.failure(fmt.Sprintf("The %s timed out (timeout %s): %s", where, dur(time.Duration(s.Timeout)), msg),
			fmt.Sprintf("Find what the %s waited on; make it faster or raise its timeout (%s)", where, dur(time.Duration(s.Timeout))))
	case s.Failure == store.FailureVerification && s.Verify != nil:
		f.failure(fmt.Sprintf("The %s ran, but its verification by probe %s failed: %s", where, s.Verify.Probe, msg),
			fmt.Sprintf("Find why probe %s did not pass within %s after the %s", s.Verify.Probe, dur(time.Duration(s.Verify.Within)), where))
	default:
		f.failure(fmt.Sprintf("The %s failed after %s: %s", where, plural(max(s.Attempts, 1), "attempt"), msg),
			fmt.Sprintf("Fix why the %s failed: %s", where, msg))
	}
}

// approvalFindings derives how approvals went: given, rejected, expired,
// and which one waited longest.
func approvalFindings(in Incident, f *findings) {
	var longest store.Approval
	var wait time.Duration
	for _, a := range sortedApprovals(in.Approvals) {
		took := a.DecidedAt.Sub(a.CreatedAt)
		step := fmt.Sprintf("step %s of policy %s", a.Step, a.Policy)
		switch a.State {
		case store.ApprovalApproved:
			f.good("Approval %s of %s was given by %s after %s", a.ID, step, voters(a), dur(took))
		case store.ApprovalRejected:
			f.failure(fmt.Sprintf("Approval %s of %s was rejected by %s%s", a.ID, step, a.DecidedBy, comment(a.Comment)),
				fmt.Sprintf("Review why %s was rejected; change the policy if it proposed the wrong action", step))
		case store.ApprovalExpired:
			f.failure(fmt.Sprintf("Approval %s of %s expired after %s with %d of %d approvals", a.ID, step, dur(took), len(a.Votes), max(a.Required, 1)),
				fmt.Sprintf("Nobody decided on %s within %s: check that its approvers are paged, and its approval expiry", step, dur(took)))
		}
		if (a.State == store.ApprovalApproved || a.State == store.ApprovalRejected) && took > wait {
			longest, wait = a, took
		}
	}
	if wait > 0 {
		f.note("The longest wait for a decision was %s (approval %s of step %s, %s by %s)", dur(wait), longest.ID, longest.Step, longest.State, longest.DecidedBy)
	}
}

// voters lists who approved.
func voters(a store.Approval) string {
	var names []string
	for _, v := range a.Votes {
		names = append(names, v.Actor)
	}
	if len(names) == 0 {
		return orNone(a.DecidedBy)
	}
	return strings.Join(names, " and ")
}

// statusUpdates counts the status updates and resolution messages sent
// about an incident, by the status updater and by notify steps, and names
// their notifiers.
func statusUpdates(in Incident) (int, []string) {
	n, seen := 0, map[string]bool{}
	var who []string
	add := func(name string) {
		n++
		if name != "" && !seen[name] {
			seen[name] = true
			who = append(who, name)
		}
	}
	for _, e := range in.Incident.Timeline {
		if e.Kind == remediate.EventStatusUpdate || e.Kind == remediate.EventResolutionNotice {
			name, _, _ := strings.Cut(strings.TrimPrefix(e.Message, "notifier "), ":")
			add(name)
		}
	}
	for _, r := range in.Runs {
		for _, s := range r.Steps {
			if strings.HasPrefix(s.Action, "notify") && s.State == store.StepSucceeded {
				name, _ := s.Result["notifier"].(string)
				add(name)
			}
		}
	}
	return n, who
}

// detailText writes an audit entry's detail, sorted.
func detailText(d map[string]string) string { return remediate.LabelText(d) }

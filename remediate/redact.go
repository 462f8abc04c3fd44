package remediate

import (
	"fmt"
	"reflect"
	"regexp"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// The journal (and so the API, approvals and post-mortems) holds a step's
// rendered params with every credential in a URL or a key/value DSN
// replaced by redactedMark, as url.URL.Redacted writes it. The approval
// hash is of these redacted params. A step whose journaled params were
// redacted is rendered again from its policy when it starts: the action
// gets the real values, and only if they redact to what the journal (and
// an approver) saw.

// redactedMark replaces a password, as url.URL.Redacted does.
const redactedMark = "xxxxx"

var (
	// urlPasswordRE matches scheme://user:password@ up to the last @ of
	// the authority.
	urlPasswordRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.\-]*://[^/?#\s:@]*:)[^/?#\s]*@`)
	// dsnPasswordRE matches password=VALUE in a key/value connection
	// string, the value bare or single-quoted.
	dsnPasswordRE = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']\S*)`)
	// redactedRE matches what redactString leaves.
	redactedRE = regexp.MustCompile(`(?i)://[^/?#\s:@]*:` + redactedMark + `@|\bpassword\s*=\s*` + redactedMark)
)

// redactString replaces the passwords of the URLs and key/value DSNs in s.
func redactString(s string) string {
	s = urlPasswordRE.ReplaceAllString(s, "${1}"+redactedMark+"@")
	return dsnPasswordRE.ReplaceAllString(s, "${1}"+redactedMark)
}

// redactParams returns a copy of params with every string redacted.
func redactParams(params map[string]any) (map[string]any, error) {
	return walkParams(params, "", func(_, s string) (string, error) { return redactString(s), nil })
}

// hasRedaction reports whether some string of params holds a redaction.
func hasRedaction(params map[string]any) bool {
	found := false
	_, _ = walkParams(params, "", func(_, s string) (string, error) {
		found = found || redactedRE.MatchString(s)
		return s, nil
	})
	return found
}

// runParams returns the params step st of run executes with: its journaled
// params, or, when those were redacted, the params rendered again from the
// policy over the run's labels. When the policy no longer renders what was
// journaled (and approved), it fails the step and the run, with the
// reason, and reports false.
func (t *txn) runParams(run *store.Run, inc *store.Incident, st *store.Step) (map[string]any, bool, error) {
	params, why, err := t.rerender(run, inc, st)
	if err != nil || why == "" {
		return params, err == nil, err
	}
	if err := t.moveStep(run, inc, st, store.StepFailed, note{reason: why}); err != nil {
		return nil, false, err
	}
	return nil, false, t.moveRun(run, inc, store.RunFailed, note{reason: why})
}

// rerender returns runParams' params, or the reason the step cannot start.
func (t *txn) rerender(run *store.Run, inc *store.Incident, st *store.Step) (map[string]any, string, error) {
	if !hasRedaction(st.Params) {
		return st.Params, "", nil
	}
	var p *policy
	for _, x := range t.e.policies {
		if x.cfg.Name == run.Policy {
			p = x
		}
	}
	if p == nil || st.Index >= len(p.steps) || p.steps[st.Index].name != st.Name {
		return nil, fmt.Sprintf("policy %s no longer has step %s: its credentials, redacted in the journal, cannot be rendered again; not executed", run.Policy, st.Name), nil
	}
	summary := detect.Detection{Labels: run.Labels, Annotations: run.Annotations}.Summary()
	full, err := renderParams(p.steps[st.Index].params, TemplateData{
		Labels: run.Labels, Annotations: run.Annotations,
		Incident: TemplateIncident{ID: inc.ID, Fingerprint: inc.Fingerprint, StartsAt: inc.StartsAt, Summary: summary},
		Run:      TemplateRun{ID: run.ID}, Target: run.Target, Policy: run.Policy,
	})
	if err != nil {
		return nil, fmt.Sprintf("rendering the step's params again failed: %v; not executed", err), nil
	}
	shown, err := redactParams(full)
	if err != nil {
		return nil, "", err
	}
	if !reflect.DeepEqual(shown, st.Params) {
		return nil, fmt.Sprintf("the policy's step %s changed since it was planned: its params differ from the journaled ones; not executed", st.Name), nil
	}
	return full, "", nil
}

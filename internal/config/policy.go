package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/fruitfulplanet/drguard/internal/params"
)

// policies checks each policy and its steps, including that each step's
// action exists and accepts its parameters.
func (v *validator) policies() {
	seen := map[string]string{}
	for i := range v.c.Policies {
		p := &v.c.Policies[i]
		path := indexPath("policies", i)
		v.name(seen, "policy", path, p.Name)
		if len(p.Matchers) == 0 {
			v.ps.errorf(joinPath(path, "matchers"), "at least one matcher is required, e.g. alertname=\"PostgresDown\"")
		}
		for j, m := range p.Matchers {
			if _, err := labels.ParseMatcher(m); err != nil {
				v.ps.errorf(indexPath(joinPath(path, "matchers"), j), "invalid matcher %q: %v", m, err)
			}
		}
		if !labelNameRE.MatchString(p.TargetLabel) {
			v.ps.errorf(joinPath(path, "target_label"), "%q is not a valid label name", p.TargetLabel)
		}
		v.nonNegative(joinPath(path, "cooldown"), p.Cooldown)
		if p.OnResolved != OnResolvedStop && p.OnResolved != OnResolvedContinue {
			v.ps.errorf(joinPath(path, "on_resolved"), "unknown on_resolved %q: want stop or continue", p.OnResolved)
		}
		if mr := p.MaxRuns; mr != nil {
			if mr.Count <= 0 {
				v.ps.errorf(joinPath(path, "max_runs.count"), "must be at least 1")
			}
			v.positive(joinPath(path, "max_runs.window"), mr.Window)
		}
		v.corroborate(path, p.Corroborate)
		if len(p.Steps) == 0 {
			v.ps.errorf(joinPath(path, "steps"), "at least one step is required")
		}
		stepNames := map[string]string{}
		for j := range p.Steps {
			v.step(indexPath(joinPath(path, "steps"), j), &p.Steps[j], stepNames)
		}
	}
}

// step checks one step of a policy; seen holds the policy's step names.
func (v *validator) step(path string, st *Step, seen map[string]string) {
	if st.Action == "" {
		v.ps.errorf(joinPath(path, "action"), "action is required")
	} else {
		v.name(seen, "step", path, st.Name)
		v.action(path, st)
	}
	v.params(joinPath(path, "params"), st.Params)
	v.steering(joinPath(path, "params"), st)
	v.positive(joinPath(path, "timeout"), st.Timeout)
	switch st.OnFailure {
	case OnFailureAbort, OnFailureContinue, OnFailureEscalate:
	default:
		v.ps.errorf(joinPath(path, "on_failure"), "unknown on_failure %q: want abort, continue or escalate", st.OnFailure)
	}
	if st.Approval.Required {
		v.positive(joinPath(path, "approval.expires"), st.Approval.Expires)
	} else if st.Approval.Expires != 0 {
		v.ps.warnf(joinPath(path, "approval.expires"), "has no effect: approval.required is not true")
	}
	if st.Approval.Required && st.Approval.Approvals < 1 {
		v.ps.errorf(joinPath(path, "approval.approvals"), "must be at least 1")
	}
	if vf := st.Verify; vf != nil {
		if vf.Probe == "" {
			v.ps.errorf(joinPath(path, "verify.probe"), "probe is required: the probe that must pass after this step")
		}
		v.positive(joinPath(path, "verify.within"), vf.Within)
	}
}

// action checks that a step's action exists and accepts its parameters.
func (v *validator) action(path string, st *Step) {
	if v.known.Actions == nil {
		return
	}
	validate, ok := v.known.Actions[st.Action]
	if !ok {
		v.ps.errorf(joinPath(path, "action"), "unknown action %q (known: %s)", st.Action, strings.Join(sortedKeys(v.known.Actions), ", "))
		return
	}
	if validate == nil {
		return
	}
	raw := st.Params
	if raw == nil {
		raw = map[string]any{}
	}
	v.paramProblems(joinPath(path, "params"), fmt.Sprintf("action %s: ", st.Action), validate(raw))
}

// paramProblems reports the problems a params check found, each at the
// key it is about (and so at that key's line), or at the params.
func (v *validator) paramProblems(path, prefix string, err error) {
	for _, ke := range params.KeyErrors(err) {
		p := path
		if ke.Key != "" {
			p = joinPath(path, ke.Key)
		}
		v.ps.errorf(p, "%s%v", prefix, ke.Err)
	}
}

// params checks that every string inside a step's params is a valid
// template. Keys are not templates.
func (v *validator) params(path string, x any) {
	switch x := x.(type) {
	case string:
		if err := checkTemplate(x, v.known.TemplateFuncs); err != nil {
			v.ps.errorf(path, "%v", err)
			return
		}
		for _, f := range unknownTemplateFields(x, v.known.TemplateFuncs) {
			v.ps.warnf(path, "the template refers to %s, which is not one of %s", f, strings.Join(templateFields(), ", "))
		}
		if bad := concatenatedJSON(x); len(bad) > 0 {
			v.ps.warnf(path, "JSON built by pasting template output into its text ({{%s}}): a label holding a quote can change the document; write {{ json .Labels.x }} with no quotes around it, which encodes the value as one JSON value", bad[0])
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v.params(joinPath(path, k), x[k])
		}
	case []any:
		for i, e := range x {
			v.params(indexPath(path, i), e)
		}
	case nil, bool, int, int64, uint64, float64:
	default:
		v.ps.errorf(path, "unsupported value of type %T", x)
	}
}

// crossReference checks that every name one section uses is defined in
// another, and lints the DR plan as a whole.
func (v *validator) crossReference() {
	c := v.c
	probes := map[string]bool{}
	for _, p := range c.Probes {
		probes[p.Name] = true
	}
	for i, p := range c.Policies {
		for j, st := range p.Steps {
			if st.Verify != nil && st.Verify.Probe != "" && !probes[st.Verify.Probe] {
				v.ps.errorf(fmt.Sprintf("policies[%d].steps[%d].verify.probe", i, j), "undefined probe %q in policy %q", st.Verify.Probe, p.Name)
			}
		}
	}
	for i, p := range c.Probes {
		path := indexPath("probes", i)
		if p.Target != "" && len(c.Targets.Kinds(p.Target)) == 0 {
			v.ps.errorf(joinPath(path, "target"), "undefined target %q in probe %q", p.Target, p.Name)
		} else if check := v.known.Probes[p.Type]; check != nil {
			v.paramProblems(joinPath(path, "params"), "", check(p, c))
		}
		v.service(path, "probe", p.Name, p.Service)
	}
	restored := map[string]bool{}
	backups := map[string]bool{}
	for _, b := range c.Backups {
		backups[b.Name] = true
	}
	for i, r := range c.RestoreTests {
		restored[r.Backup] = true
		if r.Backup != "" && !backups[r.Backup] {
			v.ps.errorf(joinPath(indexPath("restore_tests", i), "backup"), "undefined backup %q in restore test %q", r.Backup, r.Name)
		}
	}
	for i, b := range c.Backups {
		v.backupRefs(indexPath("backups", i), b, restored[b.Name])
	}
	v.recoveryRefs()
	v.journalSeparate()
	v.drillRefs()
}

// backupRefs checks a backup's target, destination and objectives.
func (v *validator) backupRefs(path string, b Backup, restoreTested bool) {
	t := &v.c.Targets
	switch {
	case b.Target == "" || t.hasKind(b.Target, KindPostgres):
	case t.hasKind(b.Target, KindRedis):
		v.ps.errorf(joinPath(path, "target"), "backup %q: Redis backups do not exist in drguard: %q is a redis target, and only postgres targets can be backed up (watch Redis persistence with a redis_persistence probe)", b.Name, b.Target)
	case len(t.Kinds(b.Target)) == 0:
		v.ps.errorf(joinPath(path, "target"), "undefined target %q in backup %q", b.Target, b.Name)
	default:
		v.ps.errorf(joinPath(path, "target"), "target %q of backup %q is not a postgres target", b.Target, b.Name)
	}
	if b.Destination != "" && !t.hasKind(b.Destination, KindS3) {
		v.ps.errorf(joinPath(path, "destination"), "undefined s3 target %q in backup %q", b.Destination, b.Name)
	}
	if !v.service(path, "backup", b.Name, b.Service) {
		return
	}
	v.backupPlan(path, b)
	if !restoreTested {
		v.ps.warnf(path, "backup %q is never restore-tested: add a restore_tests entry for it", b.Name)
	}
}

// service warns when a probe or backup counts toward no objective. It
// reports whether the service has objectives.
func (v *validator) service(path, what, name, service string) bool {
	if service == "" {
		v.ps.warnf(path, "%s %q has no service (set service, or a service on its target); it counts toward no RPO/RTO objective", what, name)
		return false
	}
	if _, ok := v.c.Objectives[service]; !ok {
		v.ps.warnf(joinPath(path, "service"), "service %q has no objectives: add objectives.%s with rpo and rto", service, service)
		return false
	}
	return true
}

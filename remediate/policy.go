package remediate

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// What a step does when it fails.
const (
	onFailureAbort    = "abort"
	onFailureContinue = "continue"
	onFailureEscalate = "escalate"
)

// policy is a configured policy with its matchers compiled and its steps'
// defaults and action properties settled.
type policy struct {
	cfg         config.Policy
	matchers    []*labels.Matcher
	targetLabel string
	steps       []stepPlan
}

// stepPlan is one configured step, ready to be copied into a run.
type stepPlan struct {
	name            string
	action          string
	params          map[string]any
	destructive     bool
	idempotent      bool
	timeout         time.Duration
	approval        bool
	approvalExpires time.Duration
	onFailure       string
	verify          *config.Verify
}

// compilePolicy checks one policy against the actions and fills defaults
// that the config loader would normally have set.
func compilePolicy(p config.Policy, g config.Guardrails, actions map[string]action.Action) (*policy, error) {
	if p.Name == "" {
		return nil, errors.New("policy without a name")
	}
	cp := &policy{cfg: p, targetLabel: p.TargetLabel}
	if cp.targetLabel == "" {
		cp.targetLabel = "target"
	}
	var errs []error
	for _, s := range p.Matchers {
		ms, err := labels.ParseMatchers(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy %q: matcher %q: %w", p.Name, s, err))
			continue
		}
		cp.matchers = append(cp.matchers, ms...)
	}
	if len(p.Steps) == 0 {
		errs = append(errs, fmt.Errorf("policy %q: no steps", p.Name))
	}
	for i, s := range p.Steps {
		sp, err := compileStep(p.Name, i, s, g, actions)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cp.steps = append(cp.steps, sp)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cp, nil
}

func compileStep(policyName string, i int, s config.Step, g config.Guardrails, actions map[string]action.Action) (stepPlan, error) {
	sp := stepPlan{
		name:            s.Name,
		action:          s.Action,
		params:          s.Params,
		timeout:         time.Duration(s.Timeout),
		approval:        s.Approval.Required,
		approvalExpires: time.Duration(s.Approval.Expires),
		onFailure:       s.OnFailure,
		verify:          s.Verify,
	}
	if sp.name == "" {
		sp.name = s.Action + "-" + strconv.Itoa(i)
	}
	where := fmt.Sprintf("policy %q step %q", policyName, sp.name)
	act, ok := actions[s.Action]
	if !ok {
		return sp, fmt.Errorf("%s: undefined action %q", where, s.Action)
	}
	if err := act.Validate(s.Params); err != nil {
		return sp, fmt.Errorf("%s: %w", where, err)
	}
	if err := parseTemplates(s.Params); err != nil {
		return sp, fmt.Errorf("%s: %w", where, err)
	}
	info := act.Info()
	sp.destructive, sp.idempotent = info.Destructive, info.Idempotent
	if s.Destructive != nil {
		sp.destructive = *s.Destructive
	}
	if s.Idempotent != nil {
		sp.idempotent = *s.Idempotent
	}
	if sp.timeout <= 0 {
		sp.timeout = time.Duration(g.StepTimeout)
	}
	if sp.timeout <= 0 {
		sp.timeout = 5 * time.Minute
	}
	if sp.approval && sp.approvalExpires <= 0 {
		sp.approvalExpires = time.Duration(g.ApprovalExpiry)
		if sp.approvalExpires <= 0 {
			sp.approvalExpires = time.Hour
		}
	}
	switch sp.onFailure {
	case "":
		sp.onFailure = onFailureAbort
	case onFailureAbort, onFailureContinue, onFailureEscalate:
	default:
		return sp, fmt.Errorf("%s: on_failure %q: want abort, continue or escalate", where, sp.onFailure)
	}
	if v := sp.verify; v != nil {
		if v.Probe == "" {
			return sp, fmt.Errorf("%s: verify needs a probe", where)
		}
		if v.Within <= 0 {
			sp.verify = &config.Verify{Probe: v.Probe, Within: model.Duration(sp.timeout)}
		}
	}
	return sp, nil
}

// matches reports whether every matcher matches the labels. An absent
// label matches as the empty string, as in Alertmanager routes.
func (p *policy) matches(ls map[string]string) bool {
	for _, m := range p.matchers {
		if !m.Matches(ls[m.Name]) {
			return false
		}
	}
	return true
}

// target is the value of the policy's target label, else of instance, else
// of service, else "".
func (p *policy) target(ls map[string]string) string {
	for _, name := range []string{p.targetLabel, "instance", "service"} {
		if v := ls[name]; v != "" {
			return v
		}
	}
	return ""
}

// guardKey identifies a (policy, target) pair in the journal.
func guardKey(policyName, target string) string {
	return strconv.Quote(policyName) + "/" + strconv.Quote(target)
}

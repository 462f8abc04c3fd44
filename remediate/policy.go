package remediate

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// policy is a configured policy with its matchers compiled and its steps'
// action properties settled.
type policy struct {
	cfg      config.Policy
	matchers []*labels.Matcher
	steps    []stepPlan
	// requires are the matcher sets of corroborate.requires; window is
	// corroborate.window. Without corroborate, requires is nil.
	requires [][]*labels.Matcher
	window   time.Duration
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
	approvals       int
	approvalExpires time.Duration
	onFailure       string
	verify          *config.Verify
}

// compilePolicy checks one policy against the actions. The configuration
// has its defaults already (the loader, or config.ApplyDefaults, sets
// them); a setting left without one is an error here, not a guess.
func compilePolicy(p config.Policy, fourEyes bool, actions map[string]action.Action) (*policy, error) {
	if p.Name == "" {
		return nil, errors.New("policy without a name")
	}
	cp := &policy{cfg: p}
	var errs []error
	if p.TargetLabel == "" || p.OnResolved == "" {
		errs = append(errs, fmt.Errorf("policy %q: target_label and on_resolved are unset: the configuration's defaults were not applied", p.Name))
	}
	for _, s := range p.Matchers {
		ms, err := labels.ParseMatchers(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy %q: matcher %q: %w", p.Name, s, err))
			continue
		}
		cp.matchers = append(cp.matchers, ms...)
	}
	if c := p.Corroborate; c != nil {
		cp.window = time.Duration(c.Window)
		for _, s := range c.Requires {
			ms, err := labels.ParseMatchers(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy %q: corroborate: matchers %q: %w", p.Name, s, err))
				continue
			}
			cp.requires = append(cp.requires, ms)
		}
		if cp.window <= 0 || len(cp.requires) == 0 {
			errs = append(errs, fmt.Errorf("policy %q: corroborate needs a window and matchers", p.Name))
		}
	}
	if len(p.Steps) == 0 {
		errs = append(errs, fmt.Errorf("policy %q: no steps", p.Name))
	}
	for _, s := range p.Steps {
		sp, err := compileStep(p.Name, s, fourEyes, actions)
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

func compileStep(policyName string, s config.Step, fourEyes bool, actions map[string]action.Action) (stepPlan, error) {
	sp := stepPlan{
		name:            s.Name,
		action:          s.Action,
		params:          s.Params,
		timeout:         time.Duration(s.Timeout),
		approval:        s.Approval.Required,
		approvals:       s.Approval.Approvals,
		approvalExpires: time.Duration(s.Approval.Expires),
		onFailure:       s.OnFailure,
		verify:          s.Verify,
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
	if sp.approval && fourEyes && sp.destructive {
		// Four-eyes: a destructive gated step needs two people.
		sp.approvals = max(sp.approvals, 2)
	}
	if sp.name == "" || sp.timeout <= 0 || sp.onFailure == "" || sp.approval && (sp.approvals < 1 || sp.approvalExpires <= 0) ||
		sp.verify != nil && sp.verify.Within <= 0 {
		return sp, fmt.Errorf("%s: name, timeout, on_failure, approval or verify settings are unset: the configuration's defaults were not applied", where)
	}
	switch sp.onFailure {
	case config.OnFailureAbort, config.OnFailureContinue, config.OnFailureEscalate:
	default:
		return sp, fmt.Errorf("%s: on_failure %q: want abort, continue or escalate", where, sp.onFailure)
	}
	return sp, nil
}

// matches reports whether every matcher matches the labels. An absent
// label matches as the empty string, as in Alertmanager routes.
func (p *policy) matches(ls map[string]string) bool { return matchAll(p.matchers, ls) }

// matchAll reports whether every matcher matches the labels.
func matchAll(ms []*labels.Matcher, ls map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(ls[m.Name]) {
			return false
		}
	}
	return true
}

// target is the value of the policy's target label, else of instance, else
// of service, else "".
func (p *policy) target(ls map[string]string) string {
	for _, name := range []string{p.cfg.TargetLabel, "instance", "service"} {
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

package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// Drill is one disaster-recovery drill of the plan's "Testing and Drills":
// a failure injected on purpose (or a synthetic detection, for a tabletop
// drill), the recovery its policies run, and what was achieved measured
// against the service's objectives.
type Drill struct {
	Name string `yaml:"name" json:"name"`
	// Scenario labels the drill's metrics; default: the value of the
	// first policy's scenario="…" matcher.
	Scenario string `yaml:"scenario" json:"scenario"`
	// Policy is the policy whose steps are the recovery. Policies adds
	// more, for a drill that exercises several scenarios at once (the
	// plan's full disaster simulation).
	Policy   string   `yaml:"policy" json:"policy"`
	Policies []string `yaml:"policies" json:"policies"`
	// Inject is how the failure is caused.
	Inject DrillInject `yaml:"inject" json:"inject"`
	// RecoveredWhen is the probe that must pass once the recovery has
	// ended: the end of the RTO clock. Required.
	RecoveredWhen string `yaml:"recovered_when" json:"recovered_when"`
	// Heartbeat is a postgres_heartbeat probe: the RPO is the newest
	// heartbeat its target committed before the injection minus the newest
	// heartbeat on ServingTarget after the recovery. Optional; without it
	// the RPO is not measured.
	Heartbeat string `yaml:"heartbeat" json:"heartbeat"`
	// ServingTarget is the postgres target that serves after the recovery
	// (a promoted replica, a restored database). Default: the postgres
	// target of the recovered_when probe, else the heartbeat's target.
	ServingTarget string `yaml:"serving_target" json:"serving_target"`
	// Objective is a key of objectives; default: the value of the first
	// policy's service="…" matcher.
	Objective string `yaml:"objective" json:"objective"`
	// Schedule announces the drill before it is due and exports its period
	// for the overdue alert.
	Schedule *DrillSchedule `yaml:"schedule" json:"schedule"`
	// AutoApprove has the drill approve the gated steps of the runs it
	// requested (journaled as approved by drill:NAME). Default false:
	// gated steps wait for people, as in a real incident. Four-eyes
	// refuses it: a requester never approves its own request.
	AutoApprove bool `yaml:"auto_approve" json:"auto_approve"`
	// Timeout bounds the whole drill; default: the objective's RTO.
	Timeout model.Duration `yaml:"timeout" json:"timeout"`
}

// DrillInject is how a drill causes its failure: steps like any policy
// step (exec, kubernetes.scale, http to Alertmanager…), or a synthetic
// detection for a tabletop drill.
type DrillInject struct {
	// Steps run in order; they take no approval (starting the drill is
	// the approval) and no verify.
	Steps []Step `yaml:"steps" json:"steps"`
	// Synthetic opens the incident as if the alert had fired: nothing is
	// injected and the detection path is not exercised.
	Synthetic bool `yaml:"synthetic" json:"synthetic"`
	// Labels are the synthetic detection's labels; default: the first
	// policy's equality matchers and alertname DrguardDrill.
	Labels map[string]string `yaml:"labels" json:"labels"`
}

// DrillSchedule says how often a drill is due.
type DrillSchedule struct {
	// Every is the drill's period, e.g. 90d for the plan's quarterly
	// drills.
	Every model.Duration `yaml:"every" json:"every"`
	// Announce is how long before the drill is due the policies'
	// notifiers hear about it. Default 7d (at most half the period).
	Announce model.Duration `yaml:"announce" json:"announce"`
}

// DefaultDrillAnnounce is how long before a drill is due it is announced.
const DefaultDrillAnnounce = model.Duration(7 * 24 * time.Hour)

// DrillActorPrefix starts the name a drill acts under in the journal
// (drill:NAME): the requester of its runs, and the approver of their gated
// steps with auto_approve. No user may have such a name.
const DrillActorPrefix = "drill:"

// DrillAlertName is the alertname of a synthetic drill detection.
const DrillAlertName = "DrguardDrill"

// AllPolicies returns the drill's policies: Policy, then Policies.
func (d Drill) AllPolicies() []string {
	var out []string
	if d.Policy != "" {
		out = append(out, d.Policy)
	}
	return append(out, d.Policies...)
}

// Drill returns the drill with the given name.
func (c *Config) Drill(name string) (Drill, bool) {
	for _, d := range c.Drills {
		if d.Name == name {
			return d, true
		}
	}
	return Drill{}, false
}

// Policy returns the policy with the given name.
func (c *Config) Policy(name string) (Policy, bool) {
	for _, p := range c.Policies {
		if p.Name == name {
			return p, true
		}
	}
	return Policy{}, false
}

// Probe returns the probe with the given name.
func (c *Config) Probe(name string) (Probe, bool) {
	for _, p := range c.Probes {
		if p.Name == name {
			return p, true
		}
	}
	return Probe{}, false
}

// EqualityMatchers returns the label values a policy's matchers pin with
// `=`, e.g. {scenario: database_failure, service: fruitfulplanet}.
func (p Policy) EqualityMatchers() map[string]string {
	out := map[string]string{}
	for _, s := range p.Matchers {
		m, err := labels.ParseMatcher(s)
		if err == nil && m.Type == labels.MatchEqual {
			out[m.Name] = m.Value
		}
	}
	return out
}

// applyDrillDefaults derives a drill's scenario, objective, timeout,
// serving target and synthetic labels from its policies and probes, and
// fills its injection steps' settings as a policy's.
func applyDrillDefaults(c *Config) {
	for i := range c.Drills {
		d := &c.Drills[i]
		var first map[string]string
		if ps := d.AllPolicies(); len(ps) > 0 {
			if p, ok := c.Policy(ps[0]); ok {
				first = p.EqualityMatchers()
			}
		}
		setString(&d.Scenario, first["scenario"])
		setString(&d.Objective, first["service"])
		if o, ok := c.Objectives[d.Objective]; ok {
			setDuration(&d.Timeout, o.RTO)
		}
		if d.ServingTarget == "" {
			for _, name := range []string{d.RecoveredWhen, d.Heartbeat} {
				if p, ok := c.Probe(name); ok && c.Targets.hasKind(p.Target, KindPostgres) {
					d.ServingTarget = p.Target
					break
				}
			}
		}
		if d.Inject.Synthetic && len(d.Inject.Labels) == 0 && first != nil {
			d.Inject.Labels = map[string]string{"alertname": DrillAlertName}
			for k, v := range first {
				d.Inject.Labels[k] = v
			}
		}
		if s := d.Schedule; s != nil && s.Announce == 0 {
			s.Announce = min(DefaultDrillAnnounce, s.Every/2)
		}
		for j := range d.Inject.Steps {
			applyStepDefaults(&d.Inject.Steps[j], j, &c.Guardrails)
		}
	}
}

// drills checks each drill on its own: names, the injection's form and
// steps, the schedule and the timeout.
func (v *validator) drills() {
	for i, u := range v.c.Auth.Users {
		if strings.HasPrefix(u.Name, DrillActorPrefix) {
			v.ps.errorf(joinPath(indexPath("auth.users", i), "name"), "names starting with %q are reserved for drills, which request and may approve their runs; choose another", DrillActorPrefix)
		}
	}
	seen := map[string]string{}
	for i := range v.c.Drills {
		d := &v.c.Drills[i]
		path := indexPath("drills", i)
		v.name(seen, "drill", path, d.Name)
		if len(d.AllPolicies()) == 0 {
			v.ps.errorf(joinPath(path, "policy"), "policy is required: the policy whose steps are the recovery")
		}
		if d.RecoveredWhen == "" {
			v.ps.errorf(joinPath(path, "recovered_when"), "recovered_when is required: the probe that passes once the service has recovered (the end of the RTO clock)")
		}
		v.drillInject(joinPath(path, "inject"), d)
		if s := d.Schedule; s != nil {
			v.positive(joinPath(path, "schedule.every"), s.Every)
			if s.Every > 0 && s.Announce >= s.Every {
				v.ps.errorf(joinPath(path, "schedule.announce"), "announce %s must be shorter than every %s", s.Announce, s.Every)
			}
			v.nonNegative(joinPath(path, "schedule.announce"), s.Announce)
		}
		if d.Timeout < 0 {
			v.ps.errorf(joinPath(path, "timeout"), "must not be negative")
		}
		if d.AutoApprove && v.c.Auth.FourEyes {
			v.ps.warnf(joinPath(path, "auto_approve"), "has no effect while auth.four_eyes is on: a drill requests its runs and may not approve them; gated steps wait for people")
		}
	}
}

// drillInject checks a drill's injection: steps or synthetic, not both.
func (v *validator) drillInject(path string, d *Drill) {
	in := d.Inject
	switch {
	case in.Synthetic && len(in.Steps) > 0:
		v.ps.errorf(path, "set either steps (a real failure) or synthetic: true (a tabletop drill), not both")
	case !in.Synthetic && len(in.Steps) == 0:
		v.ps.errorf(path, "inject is required: steps that cause the failure, or synthetic: true for a tabletop drill")
	case !in.Synthetic && len(in.Labels) > 0:
		v.ps.errorf(joinPath(path, "labels"), "labels are the synthetic detection's: they need synthetic: true")
	}
	names := map[string]string{}
	for j := range in.Steps {
		st := &in.Steps[j]
		sp := indexPath(joinPath(path, "steps"), j)
		v.step(sp, st, names)
		if st.Approval.Required {
			v.ps.errorf(joinPath(sp, "approval"), "an injection step takes no approval: starting the drill is the approval")
		}
		if st.Verify != nil {
			v.ps.errorf(joinPath(sp, "verify"), "an injection step takes no verify: the drill's recovered_when and its policies' steps check the recovery")
		}
	}
}

// drillRefs checks what a drill refers to: its policies, probes,
// targets and objective.
func (v *validator) drillRefs() {
	c := v.c
	for i, d := range c.Drills {
		path := indexPath("drills", i)
		key := "policy"
		if d.Policy == "" {
			key = "policies"
		}
		for _, name := range d.AllPolicies() {
			p, ok := c.Policy(name)
			switch {
			case !ok:
				v.ps.errorf(joinPath(path, key), "undefined policy %q in drill %q", name, d.Name)
			case p.DryRun:
				v.ps.errorf(joinPath(path, key), "policy %q of drill %q is a dry run: the drill would inject a failure that nothing recovers from", name, d.Name)
			}
		}
		v.drillProbe(joinPath(path, "recovered_when"), d.Name, d.RecoveredWhen, "")
		v.drillProbe(joinPath(path, "heartbeat"), d.Name, d.Heartbeat, "postgres_heartbeat")
		if d.Heartbeat != "" && d.ServingTarget == "" {
			v.ps.errorf(joinPath(path, "serving_target"), "drill %q measures the RPO but cannot tell which postgres target serves after the recovery: set serving_target", d.Name)
		}
		if d.ServingTarget != "" && !c.Targets.hasKind(d.ServingTarget, KindPostgres) {
			v.ps.errorf(joinPath(path, "serving_target"), "undefined postgres target %q in drill %q", d.ServingTarget, d.Name)
		}
		switch _, ok := c.Objectives[d.Objective]; {
		case d.Objective == "":
			v.ps.errorf(joinPath(path, "objective"), "drill %q needs an objective: its policy pins no service=\"…\" matcher; set objective to a key of objectives", d.Name)
		case !ok:
			v.ps.errorf(joinPath(path, "objective"), "undefined objective %q in drill %q (objectives has %v)", d.Objective, d.Name, sortedKeys(c.Objectives))
		}
		if d.Scenario == "" {
			v.ps.errorf(joinPath(path, "scenario"), "drill %q needs a scenario: its policy pins no scenario=\"…\" matcher", d.Name)
		}
		if d.Inject.Synthetic && !v.matchesAPolicy(d) {
			v.ps.errorf(joinPath(path, "inject.labels"), "the synthetic detection of drill %q (%v) matches none of its policies", d.Name, d.Inject.Labels)
		}
	}
}

// drillProbe checks that a drill's probe exists and, when kind is set, is
// of that type. A recovered_when probe (kind "") must not write the
// heartbeat: it would overwrite the recovery point the RPO is read from.
func (v *validator) drillProbe(path, drill, name, kind string) {
	if name == "" {
		return
	}
	p, ok := v.c.Probe(name)
	switch {
	case !ok:
		v.ps.errorf(path, "undefined probe %q in drill %q", name, drill)
	case kind != "" && p.Type != kind:
		v.ps.errorf(path, "probe %q of drill %q is a %s probe, not %s", name, drill, p.Type, kind)
	case kind == "" && p.Params["write_check"] == true:
		v.ps.errorf(path, "probe %q writes the heartbeat (write_check): as recovered_when it would overwrite the recovery point the RPO is read from", name)
	}
}

// matchesAPolicy reports whether a synthetic drill's labels match one of
// its policies.
func (v *validator) matchesAPolicy(d Drill) bool {
	for _, name := range d.AllPolicies() {
		p, ok := v.c.Policy(name)
		if !ok {
			return true // reported as undefined
		}
		all := true
		for _, s := range p.Matchers {
			m, err := labels.ParseMatcher(s)
			if err != nil || !m.Matches(d.Inject.Labels[m.Name]) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// String names a drill's injection for humans.
func (in DrillInject) String() string {
	if in.Synthetic {
		return "synthetic detection"
	}
	return fmt.Sprintf("%d step(s)", len(in.Steps))
}

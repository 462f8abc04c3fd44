package drill

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// Row is one line of a preflight: a step (or the drill itself), what it
// acts on, what was checked and the verdict.
type Row struct {
	Step    string `json:"step"`
	Action  string `json:"action"`
	Target  string `json:"target"`
	Check   string `json:"check"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
}

// Recovery is what a preflight asks about the service's recovery sources:
// the objectives' state (metrics.Objectives), fed by Refresh.
type Recovery interface {
	ObserveReplica(target string, point time.Time)
	Exposure(service, source string) (time.Duration, bool)
	RTOEstimateOf(service string) (time.Duration, bool)
}

// PreflightOptions say what a preflight checks with.
type PreflightOptions struct {
	Config  *config.Config
	Actions map[string]action.Action
	// Recovery measures the recovery sources; nil skips them. Refresh
	// feeds it what the backup catalogs and RDS know.
	Recovery Recovery
	Refresh  func(ctx context.Context)
	// RunProbe runs a probe once (the replicas' postgres_replication
	// probes, which only read); nil skips the replicas.
	RunProbe func(ctx context.Context, p config.Probe) detect.Result
	// StepTimeout bounds each step's checks; default 30s.
	StepTimeout time.Duration
}

// Preflight checks a drill without changing anything: it renders every
// injection and recovery step for a synthetic detection and runs each
// action's preflight (credentials, permissions, objects, programs,
// notifiers), checks the drill's probes and notifiers, and measures the
// recovery sources against the objective (RPO exposure, the last restore
// test against the RTO). A row whose verdict is fail means the drill would
// not run as planned.
func Preflight(ctx context.Context, o PreflightOptions, d config.Drill) []Row {
	if o.StepTimeout <= 0 {
		o.StepTimeout = 30 * time.Second
	}
	p := &preflight{o: o, d: d, created: map[string]string{}}
	for _, st := range d.Inject.Steps {
		p.step(ctx, "inject", st, map[string]string{remediate.LabelDrill: d.Name}, "")
	}
	if d.Inject.Synthetic {
		p.add(Row{Step: "inject", Check: "synthetic", Verdict: action.VerdictPass, Reason: fmt.Sprintf("a synthetic detection {%s} will be journaled; nothing is injected", remediate.LabelText(d.Inject.Labels))})
	}
	for _, name := range d.AllPolicies() {
		pol, ok := o.Config.Policy(name)
		if !ok {
			p.add(Row{Step: name, Check: "policy", Verdict: action.VerdictFail, Reason: "no such policy"})
			continue
		}
		labels := detectionLabels(d, pol)
		for _, st := range pol.Steps {
			p.step(ctx, name, st, labels, labels[pol.TargetLabel])
		}
	}
	p.budget()
	p.probes()
	for _, n := range notifiers(o.Config, d) {
		p.add(Row{Step: "announce", Action: "notify", Target: n, Check: "notifier", Verdict: action.VerdictPass, Reason: "configured; the drill announces itself here (nothing was sent)"})
	}
	if len(notifiers(o.Config, d)) == 0 {
		p.add(Row{Step: "announce", Action: "notify", Check: "notifier", Verdict: action.VerdictFail, Reason: "no notifier is configured: nobody would hear of the drill"})
	}
	p.recovery(ctx)
	return p.rows
}

// preflight accumulates a drill's rows.
type preflight struct {
	o    PreflightOptions
	d    config.Drill
	rows []Row
	// created maps an object an earlier step creates to that step.
	created map[string]string
}

func (p *preflight) add(r Row) { p.rows = append(p.rows, r) }

// detectionLabels are the labels of the synthetic detection a policy's
// steps are rendered for: the synthetic drill's, else the policy's
// equality matchers, with alertname and drill.
func detectionLabels(d config.Drill, pol config.Policy) map[string]string {
	labels := map[string]string{"alertname": config.DrillAlertName}
	for k, v := range pol.EqualityMatchers() {
		labels[k] = v
	}
	if d.Inject.Synthetic {
		for k, v := range d.Inject.Labels {
			labels[k] = v
		}
	}
	labels[remediate.LabelDrill] = d.Name
	return labels
}

// step renders one step and runs its action's preflight.
func (p *preflight) step(ctx context.Context, where string, st config.Step, labels map[string]string, target string) {
	name := where + "/" + st.Name
	act, ok := p.o.Actions[st.Action]
	if !ok {
		p.add(Row{Step: name, Action: st.Action, Check: "action", Verdict: action.VerdictFail, Reason: "no such action"})
		return
	}
	now := time.Now().UTC()
	params, err := remediate.RenderParams(st.Params, remediate.TemplateData{
		Labels: labels, Annotations: map[string]string{"summary": "drill " + p.d.Name + " preflight"},
		Incident: remediate.TemplateIncident{ID: "inc-preflight", StartsAt: now, Summary: "drill " + p.d.Name + " preflight"},
		Run:      remediate.TemplateRun{ID: "run-preflight"}, Target: target, Policy: where,
	})
	if err != nil {
		p.add(Row{Step: name, Action: st.Action, Check: "params", Verdict: action.VerdictWarn,
			Reason: "not rendered for a synthetic detection (it needs a real one's labels): " + err.Error()})
		return
	}
	pf, ok := act.(action.Preflighter)
	if !ok {
		p.add(Row{Step: name, Action: st.Action, Check: "preflight", Verdict: action.VerdictWarn, Reason: "this action cannot be checked beforehand"})
		return
	}
	sctx, cancel := context.WithTimeout(ctx, p.o.StepTimeout)
	defer cancel()
	res := pf.Preflight(sctx, action.Request{RunID: "run-preflight", Step: st.Name, Policy: where, Target: target, Params: params, Labels: labels})
	for _, c := range res.Checks {
		row := Row{Step: name, Action: st.Action, Target: c.Target, Check: c.Check, Verdict: c.Verdict, Reason: c.Reason}
		if by, ok := p.created[c.Missing]; ok && c.Missing != "" && c.Verdict == action.VerdictFail {
			row.Verdict, row.Reason = action.VerdictPass, c.Reason+"; step "+by+" creates it first"
		}
		p.add(row)
	}
	for _, obj := range res.Creates {
		p.created[obj] = name
	}
	if v := st.Verify; v != nil {
		p.probe(name, "verify", v.Probe)
	}
}

// budget checks that the global destructive budget lets every
// destructive step of the drill's policies run: a recovery blocked halfway
// by a guardrail is worse than none.
func (p *preflight) budget() {
	var steps []string
	for _, name := range p.d.AllPolicies() {
		pol, _ := p.o.Config.Policy(name)
		for _, st := range pol.Steps {
			act, ok := p.o.Actions[st.Action]
			destructive := ok && act.Info().Destructive
			if st.Destructive != nil {
				destructive = *st.Destructive
			}
			if destructive {
				steps = append(steps, name+"/"+st.Name)
			}
		}
	}
	g := p.o.Config.Guardrails
	row := Row{Step: "drill", Action: "guardrails", Target: "destructive_budget", Check: "budget", Verdict: action.VerdictPass,
		Reason: fmt.Sprintf("%d destructive step(s) within the budget of %d per %s (steps other runs took in the window count too)", len(steps), g.DestructiveBudget, g.DestructiveWindow)}
	if len(steps) > g.DestructiveBudget {
		row.Verdict = action.VerdictFail
		row.Reason = fmt.Sprintf("%d destructive steps (%s) but guardrails.destructive_budget allows %d per %s: the recovery would be blocked halfway",
			len(steps), strings.Join(steps, ", "), g.DestructiveBudget, g.DestructiveWindow)
	}
	p.add(row)
}

// probe checks that a probe the drill relies on is configured.
func (p *preflight) probe(step, check, name string) {
	if pr, ok := p.o.Config.Probe(name); ok {
		p.add(Row{Step: step, Action: "probe", Target: name, Check: check, Verdict: action.VerdictPass,
			Reason: fmt.Sprintf("%s probe on %s, every %s", pr.Type, pr.Target, pr.Interval)})
		return
	}
	p.add(Row{Step: step, Action: "probe", Target: name, Check: check, Verdict: action.VerdictFail, Reason: "no such probe"})
}

// probes checks recovered_when, the heartbeat and the serving target.
func (p *preflight) probes() {
	p.probe("drill", "recovered_when", p.d.RecoveredWhen)
	if p.d.Heartbeat == "" {
		p.add(Row{Step: "drill", Check: "heartbeat", Verdict: action.VerdictWarn, Reason: "no heartbeat probe: the RPO will not be measured"})
		return
	}
	p.probe("drill", "heartbeat", p.d.Heartbeat)
	p.add(Row{Step: "drill", Action: "postgres", Target: p.d.ServingTarget, Check: "serving", Verdict: action.VerdictPass,
		Reason: "the heartbeat is read here after the recovery, once it has replayed what it received"})
}

// recovery measures the service's recovery sources against its
// objectives: the best RPO exposure, and the RTO estimate from the last
// restore test.
func (p *preflight) recovery(ctx context.Context) {
	rec, cfg, service := p.o.Recovery, p.o.Config, p.d.Objective
	if rec == nil {
		return
	}
	obj := cfg.Objectives[service]
	rctx, cancel := context.WithTimeout(ctx, 2*p.o.StepTimeout)
	defer cancel()
	if p.o.Refresh != nil {
		p.o.Refresh(rctx)
	}
	if p.o.RunProbe != nil {
		for _, src := range obj.RecoverySources {
			for _, pr := range cfg.Probes {
				if src.Type != config.RecoverySourceReplica || pr.Type != "postgres_replication" || pr.Target != src.Target {
					continue
				}
				pctx, cancel := context.WithTimeout(ctx, time.Duration(pr.Timeout))
				res := p.o.RunProbe(pctx, pr)
				cancel()
				if point, ok := probe.ReplicaRecoveryPoint(pr, res); ok {
					rec.ObserveReplica(src.Target, point)
				}
			}
		}
	}
	rpo := time.Duration(obj.RPO)
	best, bestSource := time.Duration(-1), ""
	for _, source := range []string{"backup", config.RecoverySourceReplica, config.RecoverySourcePITR} {
		exp, ok := rec.Exposure(service, source)
		if !ok {
			continue
		}
		verdict := action.VerdictPass
		if exp > rpo {
			verdict = action.VerdictWarn
		}
		p.add(Row{Step: "objective", Action: "rpo", Target: service + " " + source, Check: "exposure", Verdict: verdict,
			Reason: fmt.Sprintf("recovering from %s now would lose %s (RPO %s)", source, fmtDur(exp), model.Duration(rpo))})
		if best < 0 || exp < best {
			best, bestSource = exp, source
		}
	}
	switch {
	case best < 0:
		p.add(Row{Step: "objective", Action: "rpo", Target: service, Check: "exposure", Verdict: action.VerdictFail, Reason: "no recovery source is known: no backup in the catalog, no replica or PITR measured"})
	case best > rpo:
		p.add(Row{Step: "objective", Action: "rpo", Target: service, Check: "exposure", Verdict: action.VerdictFail,
			Reason: fmt.Sprintf("the best source, %s, would lose %s: more than the RPO %s", bestSource, fmtDur(best), model.Duration(rpo))})
	default:
		p.add(Row{Step: "objective", Action: "rpo", Target: service, Check: "exposure", Verdict: action.VerdictPass,
			Reason: fmt.Sprintf("the best source, %s, would lose %s (RPO %s)", bestSource, fmtDur(best), model.Duration(rpo))})
	}
	rto := time.Duration(obj.RTO)
	switch est, ok := rec.RTOEstimateOf(service); {
	case !ok:
		p.add(Row{Step: "objective", Action: "rto", Target: service, Check: "restore test", Verdict: action.VerdictFail,
			Reason: "no restore test has passed: how long a restore takes is unknown"})
	case est > rto:
		p.add(Row{Step: "objective", Action: "rto", Target: service, Check: "restore test", Verdict: action.VerdictFail,
			Reason: fmt.Sprintf("the last restore test plus rto_overhead takes %s: more than the RTO %s", fmtDur(est), model.Duration(rto))})
	default:
		p.add(Row{Step: "objective", Action: "rto", Target: service, Check: "restore test", Verdict: action.VerdictPass,
			Reason: fmt.Sprintf("the last restore test plus rto_overhead takes %s (RTO %s)", fmtDur(est), model.Duration(rto))})
	}
}

// Failed reports whether a row failed.
func Failed(rows []Row) bool {
	for _, r := range rows {
		if r.Verdict == action.VerdictFail {
			return true
		}
	}
	return false
}

// WriteTable writes the rows as an aligned table: step, action, target,
// check, verdict, reason.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tACTION\tTARGET\tCHECK\tVERDICT\tREASON")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dash(r.Step), dash(r.Action), dash(r.Target), dash(r.Check), strings.ToUpper(r.Verdict), r.Reason)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

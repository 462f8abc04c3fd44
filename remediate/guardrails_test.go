package remediate

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// guardrailCase is a guardrail that blocks a run and how it says why.
type guardrailCase struct {
	name   string
	cfg    func(*config.Config)
	dryRun bool
	// act fires alerts; the run of "fp-last" is the one checked.
	act        func(h *harness)
	runState   store.RunState
	stepState  store.StepState
	result     string
	reason     string
	auditAct   string
	guardrail  string
	executions int
}

// guardrailCases are the guardrails TestGuardrailsBlockAndSayWhy checks.
var guardrailCases = []guardrailCase{
	{
		name: "cooldown",
		cfg:  func(c *config.Config) { c.Policies[0].Cooldown = model.Duration(30 * time.Minute) },
		act: func(h *harness) {
			h.fire("fp-1", labelsFor("db-1"))
			h.waitRun("fp-1", store.RunSucceeded)
			h.clock.Advance(3 * time.Minute)
			h.fire("fp-last", labelsFor("db-1"))
		},
		runState: store.RunBlocked, stepState: store.StepBlocked, result: metrics.ResultBlockedCooldown,
		reason: "cooldown: last run 3m ago, cooldown 30m", auditAct: "run.blocked", guardrail: "cooldown", executions: 1,
	},
	{
		name: "max_runs",
		cfg: func(c *config.Config) {
			c.Policies[0].MaxRuns = &config.MaxRuns{Count: 2, Window: model.Duration(time.Hour)}
		},
		act: func(h *harness) {
			for _, fp := range []string{"fp-1", "fp-2"} {
				h.fire(fp, labelsFor("db-1"))
				h.waitRun(fp, store.RunSucceeded)
				h.clock.Advance(time.Minute)
			}
			h.fire("fp-last", labelsFor("db-1"))
		},
		runState: store.RunBlocked, stepState: store.StepBlocked, result: metrics.ResultBlockedMaxRuns,
		reason: "max_runs: 2 runs in the last 1h, limit 2", auditAct: "run.blocked", guardrail: "max_runs", executions: 2,
	},
	{
		name: "destructive budget",
		cfg: func(c *config.Config) {
			c.Guardrails.DestructiveBudget = 1
			c.Policies[0].Steps[0].Destructive = truePtr()
		},
		act: func(h *harness) {
			h.fire("fp-1", labelsFor("db-1"))
			h.waitRun("fp-1", store.RunSucceeded)
			h.fire("fp-last", labelsFor("db-2")) // another target: only the budget applies
		},
		runState: store.RunBlocked, stepState: store.StepBlocked, result: metrics.ResultBlockedBudget,
		reason: "destructive budget: 1 destructive steps in the last 1h, budget 1", auditAct: "step.blocked", guardrail: "destructive_budget", executions: 1,
	},
	{
		name: "pause",
		act: func(h *harness) {
			if err := h.eng.SetPaused(context.Background(), true, "carol", "10.1.1.1:999"); err != nil {
				h.t.Fatal(err)
			}
			h.fire("fp-last", labelsFor("db-1"))
		},
		runState: store.RunBlocked, stepState: store.StepBlocked, result: metrics.ResultBlockedPaused,
		reason: "paused: remediation paused by carol at 2026-03-01T12:00:00Z", auditAct: "run.blocked", guardrail: "paused",
	},
	{
		name: "active run",
		cfg: func(c *config.Config) {
			c.Policies[0].Steps[0].Approval = config.Approval{Required: true, Expires: model.Duration(time.Hour)}
		},
		act: func(h *harness) {
			h.fire("fp-1", labelsFor("db-1"))
			h.waitRun("fp-1", store.RunAwaitingApproval)
			h.fire("fp-last", labelsFor("db-1"))
		},
		runState: store.RunBlocked, stepState: store.StepBlocked, result: metrics.ResultBlockedActive,
		reason: `active run: run-000001 is still awaiting_approval for policy "fix" on target "db-1"`, auditAct: "run.blocked", guardrail: "active_run",
	},
	{
		name: "global dry run", dryRun: true,
		act:      func(h *harness) { h.fire("fp-last", labelsFor("db-1")) },
		runState: store.RunDryRun, stepState: store.StepDryRun, result: metrics.ResultDryRun,
		reason: "dry run: drguard started with --dry-run", auditAct: "run.dry_run",
	},
	{
		name:     "guardrails dry run",
		cfg:      func(c *config.Config) { c.Guardrails.DryRun = true },
		act:      func(h *harness) { h.fire("fp-last", labelsFor("db-1")) },
		runState: store.RunDryRun, stepState: store.StepDryRun, result: metrics.ResultDryRun,
		reason: "dry run: guardrails.dry_run is on", auditAct: "run.dry_run",
	},
	{
		name:     "policy dry run",
		cfg:      func(c *config.Config) { c.Policies[0].DryRun = true },
		act:      func(h *harness) { h.fire("fp-last", labelsFor("db-1")) },
		runState: store.RunDryRun, stepState: store.StepDryRun, result: metrics.ResultDryRun,
		reason: `dry run: policy "fix" has dry_run on`, auditAct: "run.dry_run",
	},
}

// truePtr is a *bool for the configuration's optional flags.
func truePtr() *bool {
	b := true
	return &b
}

func TestGuardrailsBlockAndSayWhy(t *testing.T) {
	for _, tc := range guardrailCases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.dryRun = tc.dryRun
			st := h.markStep("fix")
			st.Params["argv"] = []any{"mktemp", filepath.Join(h.work, "fix.{{ .Target }}.XXXXXX")}
			cfg := defaultConfig(config.Policy{Name: "fix", Matchers: []string{`alertname="PostgresDown"`}, Steps: []config.Step{st}})
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			h.run(cfg)
			tc.act(h)
			run := h.waitRun("fp-last", tc.runState)
			step := run.Steps[0]
			if step.State != tc.stepState || !strings.Contains(step.Reason, tc.reason) || !strings.Contains(run.Reason, tc.reason) {
				t.Errorf("run %s %q, step %s %q; want %s/%s with reason %q", run.State, run.Reason, step.State, step.Reason, tc.runState, tc.stepState, tc.reason)
			}
			if argv := step.Params["argv"].([]any); argv[1] != filepath.Join(h.work, "fix."+run.Target+".XXXXXX") {
				t.Errorf("step params not shown rendered: %v", argv)
			}
			time.Sleep(50 * time.Millisecond)
			if n := h.marks("fix"); n != tc.executions {
				t.Errorf("executions = %d, want %d", n, tc.executions)
			}
			found := false
			for _, e := range h.audits(tc.auditAct) {
				if e.Subject == run.ID && (tc.guardrail == "" || e.Detail["guardrail"] == tc.guardrail) && strings.Contains(e.Detail["reason"], tc.reason) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s audit entry for %s with reason %q", tc.auditAct, run.ID, tc.reason)
			}
			in, _ := h.incident("fp-last")
			if !timelineHas(in, tc.reason) {
				t.Errorf("timeline lacks %q: %+v", tc.reason, in.Timeline)
			}
			h.wantSteps("fix", "exec", tc.result, 1)
		})
	}
}

func timelineHas(in store.Incident, text string) bool {
	for _, e := range in.Timeline {
		if strings.Contains(e.Message, text) {
			return true
		}
	}
	return false
}

func TestPauseBlocksApprovedStepThatHasNotStarted(t *testing.T) {
	h, a := gatedHarness(t, nil)
	if err := h.eng.SetPaused(context.Background(), true, "carol", "10.1.1.1:999"); err != nil {
		t.Fatal(err)
	}
	h.wantMetric("paused", func() float64 { return testutil.ToFloat64(h.m.Paused) }, 1)
	if _, err := h.eng.Decide(context.Background(), a.ID, approver); err != nil {
		t.Fatal(err)
	}
	run := h.waitRun("fp-1", store.RunBlocked)
	if !strings.Contains(run.Steps[0].Reason, "paused: remediation paused by carol") {
		t.Errorf("step reason %q", run.Steps[0].Reason)
	}
	time.Sleep(50 * time.Millisecond)
	if h.marks("failover") != 0 {
		t.Error("step ran while paused")
	}
	h.wantSteps("failover", "exec", metrics.ResultBlockedPaused, 1)
	if e := h.audits("remediation.paused"); len(e) != 1 || e[0].Actor != "carol" || e[0].Remote != "10.1.1.1:999" {
		t.Errorf("pause audit = %+v", e)
	}

	// Resuming lets new runs start again.
	if err := h.eng.SetPaused(context.Background(), false, "carol", "10.1.1.1:999"); err != nil {
		t.Fatal(err)
	}
	h.wantMetric("paused", func() float64 { return testutil.ToFloat64(h.m.Paused) }, 0)
	h.fire("fp-2", labelsFor("db-2"))
	h.waitRun("fp-2", store.RunAwaitingApproval)
}

func TestGuardrailsSurviveRestart(t *testing.T) {
	h := newHarness(t)
	yes := true
	p := markPolicy(h, "fix", "fix")
	p.Cooldown = model.Duration(time.Hour)
	p.Steps[0].Destructive = &yes
	cfg := defaultConfig(p, config.Policy{
		Name: "other", Matchers: []string{`alertname="ReplicaLag"`},
		Steps: []config.Step{{Name: "d", Action: "exec", Destructive: &yes, Params: map[string]any{"argv": []any{"true"}}}},
	})
	cfg.Guardrails.DestructiveBudget = 1
	h.run(cfg)
	h.fire("fp-1", labelsFor("db-1"))
	h.waitRun("fp-1", store.RunSucceeded)
	if err := h.eng.SetPaused(context.Background(), true, "carol", ""); err != nil {
		t.Fatal(err)
	}

	h.restart()
	h.wantMetric("paused", func() float64 { return testutil.ToFloat64(h.m.Paused) }, 1)
	h.fire("fp-2", labelsFor("db-1"))
	run := h.waitRun("fp-2", store.RunBlocked)
	if !strings.HasPrefix(run.Reason, "paused:") {
		t.Errorf("after restart: %q, want paused", run.Reason)
	}
	if err := h.eng.SetPaused(context.Background(), false, "carol", ""); err != nil {
		t.Fatal(err)
	}

	h.restart()
	h.clock.Advance(10 * time.Minute)
	h.fire("fp-3", labelsFor("db-1"))
	run = h.waitRun("fp-3", store.RunBlocked)
	if run.Reason != "cooldown: last run 10m ago, cooldown 1h" {
		t.Errorf("after restart: %q, want the cooldown", run.Reason)
	}
	h.fire("fp-4", labelsFor("db-9", "alertname", "ReplicaLag"))
	run = h.waitRun("fp-4", store.RunBlocked)
	if !strings.HasPrefix(run.Reason, "step d blocked: destructive budget: 1 destructive steps in the last 1h") {
		t.Errorf("after restart: %q, want the destructive budget", run.Reason)
	}
	if h.marks("fix") != 1 {
		t.Errorf("executions = %d, want 1", h.marks("fix"))
	}
}

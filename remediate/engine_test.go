package remediate

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

func markPolicy(h *harness, name, prefix string) config.Policy {
	return config.Policy{Name: name, Matchers: []string{`alertname="PostgresDown"`}, Steps: []config.Step{h.markStep(prefix)}}
}

func TestRepeatedAlertsStartOneRun(t *testing.T) {
	h := newHarness(t)
	h.run(defaultConfig(markPolicy(h, "restart-db", "restart")))

	// Alertmanager re-sends the group: 30 notifications, some concurrent.
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.fire("fp-1", labelsFor("db-1"))
		}()
		if i%5 == 0 {
			wg.Wait()
		}
	}
	wg.Wait()
	h.waitRun("fp-1", store.RunSucceeded)
	h.eventually("outbox drained", func() bool {
		a, err := h.store.PendingAlerts(0)
		return err == nil && len(a) == 0
	})
	// Give a second chance to any wrongly started run.
	time.Sleep(100 * time.Millisecond)

	in, runs := h.incident("fp-1")
	if len(runs) != 1 {
		t.Fatalf("runs = %d, want 1", len(runs))
	}
	// The re-sends all carry one receive time: those identical to a
	// durable record are answered without a write (docs/design.md), so
	// fewer than 29 may be counted, never none.
	if in.Repeats < 1 || in.Repeats > 29 {
		t.Errorf("repeats = %d, want 1 to 29", in.Repeats)
	}
	if n := h.marks("restart"); n != 1 {
		t.Errorf("executions = %d, want 1", n)
	}
	incidents, err := h.eng.Incidents()
	if err != nil || len(incidents) != 1 {
		t.Fatalf("incidents = %d (%v), want 1", len(incidents), err)
	}
	h.wantMetric("detections_total", func() float64 { return testutil.ToFloat64(h.m.Detections.WithLabelValues("db_down", "alertmanager")) }, 1)
	h.wantSteps("restart-db", "exec", metrics.ResultSucceeded, 1)
	h.wantMetric("incidents_open", func() float64 { return testutil.ToFloat64(h.m.IncidentsOpen.WithLabelValues("orders", "db_down")) }, 1)
}

func TestResolvedAlertStartsNothingAndClosesIncident(t *testing.T) {
	h := newHarness(t)
	h.run(defaultConfig(markPolicy(h, "restart-db", "restart")))

	h.fire("fp-1", labelsFor("db-1"))
	h.waitRun("fp-1", store.RunSucceeded)
	h.alert(detect.StatusResolved, "fp-1", t0, labelsFor("db-1"))
	h.eventually("incident resolved", func() bool {
		in, _ := h.incident("fp-1")
		return in.State == store.IncidentResolved
	})
	// A resolved notification for a condition never seen opens nothing.
	h.alert(detect.StatusResolved, "fp-unknown", t0, labelsFor("db-2"))
	// A late firing repeat after the resolution does not reopen or run.
	h.fire("fp-1", labelsFor("db-1"))
	h.eventually("outbox drained", func() bool {
		a, err := h.store.PendingAlerts(0)
		return err == nil && len(a) == 0
	})
	time.Sleep(100 * time.Millisecond)

	in, runs := h.incident("fp-1")
	if len(runs) != 1 || in.State != store.IncidentResolved || in.AlertStatus != string(detect.StatusResolved) {
		t.Fatalf("runs=%d state=%s alert=%s, want 1 run, resolved", len(runs), in.State, in.AlertStatus)
	}
	if h.hasIncident("fp-unknown") {
		t.Error("a resolved alert for an unknown condition opened an incident")
	}
	if n := h.marks("restart"); n != 1 {
		t.Errorf("executions = %d, want 1", n)
	}
	h.wantMetric("incidents_open", func() float64 { return testutil.ToFloat64(h.m.IncidentsOpen.WithLabelValues("orders", "db_down")) }, 0)
	if len(h.audits("incident.resolved")) != 1 {
		t.Error("incident resolution not audited")
	}
}

func TestResolvedBeforeRunStartsMakesItObsolete(t *testing.T) {
	h := newHarness(t)
	h.cfg = defaultConfig(markPolicy(h, "restart-db", "restart"))
	h.open()
	// Firing and resolved are both in the outbox when the engine starts:
	// the run is planned and obsolete before any step starts.
	h.fire("fp-1", labelsFor("db-1"))
	h.alert(detect.StatusResolved, "fp-1", t0, labelsFor("db-1"))
	h.start()
	run := h.waitRun("fp-1", store.RunObsolete)
	in, _ := h.incident("fp-1")
	if in.State != store.IncidentResolved {
		t.Errorf("incident state = %s, want resolved", in.State)
	}
	if run.Steps[0].State != store.StepObsolete || h.marks("restart") != 0 {
		t.Errorf("step %s executed %d times; want obsolete, 0", run.Steps[0].State, h.marks("restart"))
	}
	h.wantSteps("restart-db", "exec", metrics.ResultObsolete, 1)
}

func randHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestLabelsAreDataNeverShell(t *testing.T) {
	pwned := "/tmp/pwned-" + randHex(t)
	evil := "x; touch " + pwned
	subst := "$(id) `touch " + pwned + "-2`"
	cfg := defaultConfig(config.Policy{
		Name: "echo", Matchers: []string{`alertname="PostgresDown"`},
		Steps: []config.Step{
			{Name: "printf", Action: "exec", Params: map[string]any{
				"argv": []any{"/usr/bin/printf", "[%s]|[%s]|%d", "{{ .Labels.x }}", "{{ .Labels.y }}", "3"},
			}},
			{Name: "env", Action: "exec", Params: map[string]any{"argv": []any{"/usr/bin/env"}}},
		},
	})
	h := newHarness(t).run(cfg)
	h.fire("fp-1", labelsFor("db-1", "x", evil, "y", subst, "weird.label-name", "v"))
	run := h.waitRun("fp-1", store.RunSucceeded)

	if want := "[" + evil + "]|[" + subst + "]|3"; run.Steps[0].Output != want {
		t.Errorf("printf output = %q, want %q", run.Steps[0].Output, want)
	}
	argv := run.Steps[0].Params["argv"].([]any)
	if len(argv) != 5 || argv[2] != evil || argv[3] != subst {
		t.Errorf("rendered argv = %q: want each label as one element", argv)
	}
	env := run.Steps[1].Output
	for _, want := range []string{
		"DRGUARD_LABEL_X=" + evil + "\n", "DRGUARD_LABEL_Y=" + subst + "\n",
		"DRGUARD_LABEL_WEIRD_LABEL_NAME=v\n", "DRGUARD_RUN_ID=" + run.ID + "\n",
		"DRGUARD_POLICY=echo\n", "DRGUARD_TARGET=db-1\n",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("child env lacks %q:\n%s", want, env)
		}
	}
	for _, p := range []string{pwned, pwned + "-2"} {
		if fileExists(p) {
			t.Errorf("%s exists: a label was interpreted by a shell", p)
		}
	}
}

func TestTemplateErrorFailsRunBeforeAnyStep(t *testing.T) {
	h := newHarness(t)
	h.run(defaultConfig(config.Policy{
		Name: "needs-label", Matchers: []string{`alertname="PostgresDown"`},
		Steps: []config.Step{
			h.markStep("first"),
			{Name: "uses-missing", Action: "exec", Params: map[string]any{"argv": []any{"echo", "{{ .Labels.nope }}"}}},
		},
	}))
	h.fire("fp-1", labelsFor("db-1"))
	run := h.waitRun("fp-1", store.RunFailed)
	if !strings.Contains(run.Reason, "parameters did not render") || !strings.Contains(run.Steps[1].Error, "nope") {
		t.Errorf("reason %q / error %q: want the missing label named", run.Reason, run.Steps[1].Error)
	}
	if h.marks("first") != 0 {
		t.Error("a step ran although a later step's parameters did not render")
	}
	h.wantSteps("needs-label", "exec", metrics.ResultFailed, 1)
}

func TestNewRejectsBadPolicies(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tests := []struct {
		name string
		p    config.Policy
		want string
	}{
		{"bad matcher", config.Policy{Name: "p", Matchers: []string{`alertname=~"("`}, Steps: []config.Step{{Action: "exec", Params: map[string]any{"argv": []any{"true"}}}}}, "matcher"},
		{"unknown action", config.Policy{Name: "p", Steps: []config.Step{{Name: "s", Action: "nope"}}}, `undefined action "nope"`},
		{"bad params", config.Policy{Name: "p", Steps: []config.Step{{Name: "s", Action: "exec", Params: map[string]any{"argv": "rm -rf /"}}}}, "list of strings"},
		{"bad template", config.Policy{Name: "p", Steps: []config.Step{{Name: "s", Action: "exec", Params: map[string]any{"argv": []any{"{{ .Labels.x "}}}}}, "param argv[0]"},
		{"bad on_failure", config.Policy{Name: "p", Steps: []config.Step{{Name: "s", Action: "exec", OnFailure: "retry", Params: map[string]any{"argv": []any{"true"}}}}}, "on_failure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Store: st, Config: defaultConfig(tc.p), Actions: testActions(t)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNoMatchingPolicyOpensIncidentOnly(t *testing.T) {
	h := newHarness(t)
	p := markPolicy(h, "restart-db", "restart")
	p.Matchers = []string{`alertname="PostgresDown"`, `severity=~"critical|page"`}
	h.run(defaultConfig(p))
	h.fire("fp-1", labelsFor("db-1", "severity", "warning"))
	h.eventually("incident", func() bool { return h.hasIncident("fp-1") })
	in, runs := h.incident("fp-1")
	if len(runs) != 0 || in.Timeline[len(in.Timeline)-1].Kind != "no_match" {
		t.Fatalf("runs=%d timeline=%v: want no run and a no_match event", len(runs), in.Timeline)
	}
	// The Engine's queries work on the same data.
	if _, _, err := h.eng.Incident("inc-nope"); err == nil {
		t.Error("unknown incident: want ErrNotFound")
	}
}

package remediate

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// hungHarness runs a policy whose first step hangs, waits until the
// journal says it is running, then stops the engine the way a shutdown
// does, leaving the step journaled running.
func hungHarness(t *testing.T, idempotent bool) (*harness, store.Run) {
	t.Helper()
	h := newHarness(t)
	cfg := defaultConfig(config.Policy{
		Name: "fix", Matchers: []string{`alertname="PostgresDown"`},
		Steps: []config.Step{
			{Name: "hang", Action: "exec", Idempotent: &idempotent, Timeout: model.Duration(time.Minute),
				Params: map[string]any{"argv": []any{"sleep", "30"}}},
			h.markStep("after"),
		},
	})
	h.run(cfg)
	h.fire("fp-1", labelsFor("db-1"))
	h.eventually("step running", func() bool {
		if !h.hasIncident("fp-1") {
			return false
		}
		_, runs := h.incident("fp-1")
		return len(runs) == 1 && runs[0].Steps[0].State == store.StepRunning
	})
	time.Sleep(50 * time.Millisecond) // let sleep(1) start
	began := time.Now()
	h.stop()
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("shutdown took %s with a hung step; want prompt", d)
	}
	_, runs := h.incident("fp-1")
	if runs[0].Steps[0].State != store.StepRunning {
		t.Fatalf("after shutdown the step is %s, want still journaled running", runs[0].Steps[0].State)
	}
	return h, runs[0]
}

func TestRestartInterruptsNonIdempotentStep(t *testing.T) {
	h, _ := hungHarness(t, false)
	h.close()
	h.open()
	h.start()
	run := h.waitRun("fp-1", store.RunInterrupted)
	st := run.Steps[0]
	if st.State != store.StepInterrupted || st.Attempts != 1 || !strings.Contains(st.Reason, "not idempotent") {
		t.Errorf("step %s attempts %d reason %q", st.State, st.Attempts, st.Reason)
	}
	if run.Steps[1].State != store.StepSkipped {
		t.Errorf("next step %s, want skipped", run.Steps[1].State)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(h.audits("step.started")); n != 1 {
		t.Errorf("step.started audited %d times, want 1: the step was re-run", n)
	}
	if h.marks("after") != 0 {
		t.Error("the step after an interrupted one ran")
	}
	if e := h.audits("step.interrupted"); len(e) != 1 || e[0].Detail["retry"] != "false" {
		t.Errorf("interruption audit = %+v", e)
	}
	h.wantSteps("fix", "exec", metrics.ResultInterrupted, 1)
	// The guard is released: a new incident may run.
	in, _ := h.incident("fp-1")
	if !timelineHas(in, "interrupted by a restart") {
		t.Errorf("timeline lacks the interruption: %+v", in.Timeline)
	}
}

func TestRestartRetriesIdempotentStep(t *testing.T) {
	h, run := hungHarness(t, true)
	// Make the retried attempt finish quickly: same step, same run.
	err := h.store.Update(func(tx *store.Tx) error {
		r, err := tx.Run(run.ID)
		if err != nil {
			return err
		}
		r.Steps[0].Params = map[string]any{"argv": []any{"mktemp", filepath.Join(h.work, "retry.XXXXXX")}}
		return tx.PutRun(&r)
	})
	if err != nil {
		t.Fatal(err)
	}
	h.close()
	h.open()
	h.start()
	run = h.waitRun("fp-1", store.RunSucceeded)
	if st := run.Steps[0]; st.State != store.StepSucceeded || st.Attempts != 2 {
		t.Errorf("step %s attempts %d, want succeeded on attempt 2", st.State, st.Attempts)
	}
	if h.marks("retry") != 1 || h.marks("after") != 1 {
		t.Errorf("retry ran %d times, next step %d; want 1, 1", h.marks("retry"), h.marks("after"))
	}
	if e := h.audits("step.interrupted"); len(e) != 1 || e[0].Detail["retry"] != "true" {
		t.Errorf("interruption audit = %+v", e)
	}
	h.wantSteps("fix", "exec", metrics.ResultInterrupted, 1)
	h.wantSteps("fix", "exec", metrics.ResultSucceeded, 2)
}

func TestOutboxIsProcessedAfterRestart(t *testing.T) {
	h := newHarness(t)
	h.cfg = defaultConfig(markPolicy(h, "fix", "fix"))
	h.open()
	// Alerts committed while no engine runs, as after kill -9 right after
	// intake answered 200.
	for i := range 5 {
		h.fire(fmt.Sprintf("fp-%d", i), labelsFor(fmt.Sprintf("db-%d", i)))
		h.fire(fmt.Sprintf("fp-%d", i), labelsFor(fmt.Sprintf("db-%d", i)))
	}
	h.start()
	for i := range 5 {
		h.waitRun(fmt.Sprintf("fp-%d", i), store.RunSucceeded)
	}
	h.restart()
	time.Sleep(100 * time.Millisecond)
	if n := h.marks("fix"); n != 5 {
		t.Errorf("executions = %d, want 5", n)
	}
	// The gauges are rebuilt from the journal.
	h.wantMetric("incidents_open", func() float64 { return testutil.ToFloat64(h.m.IncidentsOpen.WithLabelValues("orders", "db_down")) }, 5)
	h.alert(detect.StatusResolved, "fp-0", t0, labelsFor("db-0"))
	h.wantMetric("incidents_open", func() float64 { return testutil.ToFloat64(h.m.IncidentsOpen.WithLabelValues("orders", "db_down")) }, 4)
}

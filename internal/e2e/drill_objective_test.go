package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/app"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// TestDrillMissesItsObjective: a failover that loses more data than the
// RPO (the replica had fallen 3.5 s behind; the objective is 2 s), and a
// recovery whose verification never passes (the drill times out), each
// report ✗ with the reason, exit 1, and set the drill metrics so:
// drguard_drill_rpo_seconds above its objective, the checklist item at 0,
// no success timestamp, no RTO for a drill that never recovered.
func TestDrillMissesItsObjective(t *testing.T) {
	e := newDrillEnv(t, true)
	d := e.drguardWith(t, e.config(false, "2s", commonProbes("region_failure")+fmt.Sprintf(`  - {name: broken, type: http, target: down, interval: %[1]s, timeout: %[1]s, failure_threshold: 1000}
policies:
  - name: region-failure
    matchers: ['scenario="region_failure"', 'service="shop"']
    steps:
      - {name: announce, action: notify.webhook, params: {status: Failing over}, timeout: 10s, on_failure: continue}
      - {name: promote-replica, action: postgres.promote, params: {target: replica, force: true}, timeout: 60s}
  - name: never-recovers
    matchers: ['scenario="never"', 'service="shop"']
    steps:
      - {name: announce, action: notify.webhook, params: {status: Recovering}, timeout: 10s}
      - {name: fix, action: exec, params: {argv: ["true"]}, timeout: 10s, verify: {probe: broken, within: 1s}}
drills:
  - name: tight-rpo
    policy: region-failure
    inject:
      steps:
        - {name: stop-primary, action: exec, params: {argv: %[2]s}, timeout: 30s}
    recovered_when: app-ready
    heartbeat: pg-heartbeat
    serving_target: replica
    timeout: 2m
  - name: never-recovers
    policy: never-recovers
    inject: {synthetic: true}
    recovered_when: broken
    heartbeat: pg-heartbeat
    serving_target: primary
    timeout: 4s
`, beat, e.stopPrimary("immediate"))), "")
	e.pg.StopWALReceiver()
	time.Sleep(3500 * time.Millisecond)

	code, out, run := execute(t, d, "tight-rpo")
	if code != app.ExitFail || run.State != store.DrillFailed || run.RPO == nil || run.RPO.Within || run.RPO.Seconds < 3 {
		t.Fatalf("tight-rpo: exit %d, %s (%s), RPO %+v; want exit 1, failed, RPO over 2s", code, run.State, run.Reason, run.RPO)
	}
	if c := checklist(run); c[store.CheckDataLossWithinRPO] != store.CheckFail || c[store.CheckFailoverWithinRTO] != store.CheckPass {
		t.Errorf("checklist %v", c)
	}
	for _, want := range []string{"| RPO |", "| ✗ |", "[ ] ✗ Data loss within RPO", "more than the objective 2s"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	code, out, never := execute(t, d, "never-recovers")
	if code != app.ExitFail || never.State != store.DrillFailed || never.RTO != nil {
		t.Fatalf("never-recovers: exit %d, %s (%s), RTO %+v; want exit 1, failed, no RTO", code, never.State, never.Reason, never.RTO)
	}
	c := checklist(never)
	if c[store.CheckFailoverWithinRTO] != store.CheckFail || c[store.CheckApplication] != store.CheckFail {
		t.Errorf("checklist %v", c)
	}
	for _, want := range []string{"[ ] ✗ Failover completed within RTO: not recovered: recovered_when broken did not pass", "did not pass within 1s", "timed_out"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	m := families(t, d.scrape(t))
	value := func(name string, labels map[string]string) (float64, bool) {
	next:
		for _, s := range m[name].GetMetric() {
			for _, l := range s.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return s.GetGauge().GetValue(), true
		}
		return 0, false
	}
	tight := map[string]string{"drill": "tight-rpo"}
	if v, _ := value("drguard_drill_rpo_seconds", tight); v != run.RPO.Seconds {
		t.Errorf("drguard_drill_rpo_seconds{drill=tight-rpo} = %v, want %v", v, run.RPO.Seconds)
	}
	if v, _ := value("drguard_drill_rpo_objective_seconds", tight); v != 2 {
		t.Errorf("drguard_drill_rpo_objective_seconds = %v, want 2", v)
	}
	if v, _ := value("drguard_drill_checklist_ok", map[string]string{"drill": "tight-rpo", "item": store.CheckDataLossWithinRPO}); v != 0 {
		t.Errorf("checklist_ok{data_loss_within_rpo} = %v, want 0", v)
	}
	if v, _ := value("drguard_drill_checklist_ok", map[string]string{"drill": "tight-rpo", "item": store.CheckMonitoring}); v != 1 {
		t.Errorf("checklist_ok{monitoring_alerts} = %v, want 1", v)
	}
	for _, drill := range []string{"tight-rpo", "never-recovers"} {
		if v, ok := value("drguard_drill_last_success_timestamp_seconds", map[string]string{"drill": drill}); !ok || v != 0 {
			t.Errorf("last_success{%s} = %v (%v), want 0", drill, v, ok)
		}
		if v, _ := value("drguard_drill_last_run_timestamp_seconds", map[string]string{"drill": drill}); v < float64(run.StartedAt.Unix()) {
			t.Errorf("last_run{%s} = %v", drill, v)
		}
	}
	if _, ok := value("drguard_drill_rto_seconds", map[string]string{"drill": "never-recovers"}); ok {
		t.Error("drguard_drill_rto_seconds has a value for a drill that never recovered")
	}
}

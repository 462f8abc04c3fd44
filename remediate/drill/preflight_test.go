package drill

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// TestPreflightPlan: a drill's preflight renders its injection and its
// policy's steps and runs each action's checks against the AWS protocol
// fake: the instance a restore creates satisfies the wait that follows it;
// a missing program, a destructive budget too small for the recovery and
// a service without any measured recovery source fail, each with its
// reason; the notify step and the announcement's notifier pass. Nothing is
// sent or changed.
func TestPreflightPlan(t *testing.T) {
	f := testharness.AWSFake(t)
	f.AddInstance("prod", testharness.AWSInstance{Statuses: []string{"available"}, LatestRestorable: time.Now()})
	sink := testharness.NewHTTPSink(t)
	yes := true
	cfg := svcConfig(t, config.Drill{Name: "q3", Policy: "recover-shop", RecoveredWhen: "svc",
		Inject: config.DrillInject{Steps: []config.Step{{Name: "corrupt", Action: "exec", Params: map[string]any{"argv": []any{"/no/such/chaos-script"}}}}}},
		config.Step{Name: "announce", Action: "notify.webhook"},
		config.Step{Name: "restore", Action: "aws.rds.restore_to_point_in_time", Params: map[string]any{"source_instance": "prod", "target_instance": "restored", "restore_time": "latest"}},
		config.Step{Name: "wait", Action: "aws.rds.wait_available", Params: map[string]any{"instance": "restored"}},
		config.Step{Name: "switch", Action: "exec", Params: map[string]any{"argv": []any{"true"}}, Destructive: &yes},
	)
	cfg.Targets.AWS = []config.AWSTarget{f.Target("aws", "eu-west-1")}
	cfg.Notifiers = []config.Notifier{{Name: "team", Type: config.NotifierWebhook, URL: config.Secret(sink.URL)}}
	cfg.Guardrails.DestructiveBudget = 0
	config.ApplyDefaults(cfg)
	cfg.Guardrails.DestructiveBudget = 0 // ApplyDefaults cannot tell an explicit 0
	actions, err := action.Build(action.Deps{Config: cfg})
	must(t, err)
	d, _ := cfg.Drill("q3")
	rows := Preflight(context.Background(), PreflightOptions{Config: cfg, Actions: actions, Recovery: metrics.NewObjectives(prometheus.NewRegistry(), cfg.Objectives)}, d)
	verdict := map[string]Row{}
	for _, r := range rows {
		verdict[r.Step+" "+r.Check] = r
	}
	for key, want := range map[string]string{
		"inject/corrupt program":           "fail: no such file or directory",
		"recover-shop/announce notifier":   "pass: nothing was sent",
		"recover-shop/restore target_free": "pass: the restore creates it",
		"recover-shop/wait exists":         "pass: step recover-shop/restore creates it first",
		"drill budget":                     "fail: 1 destructive steps (recover-shop/switch)",
		"drill recovered_when":             "pass: test probe",
		"announce notifier":                "pass: configured",
		"objective exposure":               "fail: no recovery source is known",
		"objective restore test":           "fail: no restore test has passed",
	} {
		r, ok := verdict[key]
		v, reason, _ := strings.Cut(want, ": ")
		if !ok || r.Verdict != v || !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: %+v, want %s", key, r, want)
		}
	}
	if !Failed(rows) {
		t.Error("Failed(rows) is false")
	}
	var table strings.Builder
	must(t, WriteTable(&table, rows))
	if !strings.HasPrefix(table.String(), "STEP") || !strings.Contains(table.String(), "FAIL") {
		t.Errorf("table:\n%s", table.String())
	}
	if len(sink.Requests("")) != 0 || len(f.Calls("RestoreDBInstanceToPointInTime")) != 0 {
		t.Error("the preflight sent a notice or restored an instance")
	}
}

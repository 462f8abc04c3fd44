package action_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// daemon is one drguard process's engine over a journal directory.
type daemon struct {
	store  *store.Store
	eng    *remediate.Engine
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t *testing.T, dir string, cfg *config.Config) *daemon {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	actions, err := action.Build(action.Deps{Config: cfg})
	if err != nil {
		t.Fatalf("actions: %v", err)
	}
	config.ApplyDefaults(cfg) // the engine has no defaults of its own
	eng, err := remediate.New(remediate.Options{Store: st, Config: cfg, Actions: actions})
	if err != nil {
		_ = st.Close()
		t.Fatalf("engine: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{store: st, eng: eng, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- eng.Run(ctx) }()
	t.Cleanup(d.stop)
	return d
}

// stop ends the engine and closes the journal, as a process exit would.
func (d *daemon) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
	_ = d.store.Close()
	d.cancel = nil
}

// alertStart is when every test alert started, so that a resolution
// matches its firing alert.
var alertStart = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)

func (d *daemon) fire(t *testing.T, fingerprint string, labels map[string]string) {
	t.Helper()
	d.alert(t, detect.StatusFiring, fingerprint, labels)
}

func (d *daemon) alert(t *testing.T, status detect.Status, fingerprint string, labels map[string]string) {
	t.Helper()
	err := d.store.EnqueueAlerts(context.Background(), []store.Alert{{
		Source: string(detect.SourceAlertmanager), Fingerprint: fingerprint, Status: string(status),
		StartsAt: alertStart, Labels: labels, ReceivedAt: time.Now().UTC(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	d.eng.Wake()
}

// run returns the only run of the incident with the given fingerprint.
func (d *daemon) run(fingerprint string) (store.Run, bool) {
	incs, err := d.eng.Incidents()
	if err != nil {
		return store.Run{}, false
	}
	for _, in := range incs {
		if in.Fingerprint != fingerprint {
			continue
		}
		_, runs, err := d.eng.Incident(in.ID)
		if err != nil || len(runs) == 0 {
			return store.Run{}, false
		}
		return runs[len(runs)-1], true
	}
	return store.Run{}, false
}

func policyConfig(k action.KubeFixture) *config.Config {
	cfg := *k.Config
	cfg.Guardrails = config.Guardrails{DestructiveBudget: 10, DestructiveWindow: model.Duration(time.Hour),
		ApprovalExpiry: model.Duration(time.Hour), StepTimeout: model.Duration(30 * time.Second)}
	step := func(name, act string, params map[string]any) config.Step {
		return config.Step{Name: name, Action: act, Params: params, Timeout: model.Duration(30 * time.Second), OnFailure: config.OnFailureAbort}
	}
	resume := step("resume", "kubernetes.scale", map[string]any{"name": "fruitfulplanet-app", "replicas": "previous", "from_step": "stop-writes"})
	resume.Approval = config.Approval{Required: true, Expires: model.Duration(time.Hour)}
	cfg.Policies = []config.Policy{
		{Name: "data-corruption", Matchers: []string{`scenario="data_corruption"`}, TargetLabel: "target", Steps: []config.Step{
			step("stop-writes", "kubernetes.scale", map[string]any{"name": "fruitfulplanet-app", "replicas": 0}),
			resume,
		}},
		{Name: "security-breach", Matchers: []string{`scenario="security_breach"`}, TargetLabel: "target", Steps: []config.Step{
			step("rotate", "kubernetes.patch_secret", map[string]any{"name": "other-secret", "values": map[string]any{"K": "v"}}),
		}},
	}
	return &cfg
}

// TestScalePreviousAcrossRestart scales to 0, restarts drguard (a new
// engine over the same journal), approves the gated resume step, and
// checks that `replicas: previous` restored the exact earlier count.
func TestScalePreviousAcrossRestart(t *testing.T) {
	k := action.NewKubeFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seven := int32(7)
	scale, err := k.Admin.AppsV1().Deployments(k.Namespace).GetScale(ctx, "fruitfulplanet-app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = seven
	if _, err := k.Admin.AppsV1().Deployments(k.Namespace).UpdateScale(ctx, "fruitfulplanet-app", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	replicas := func() int32 {
		d, err := k.Admin.AppsV1().Deployments(k.Namespace).Get(ctx, "fruitfulplanet-app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}
	cfg := policyConfig(k)
	dir := t.TempDir()

	first := startDaemon(t, dir, cfg)
	first.fire(t, "corruption", map[string]string{"alertname": "IntegrityCheckFailed", "scenario": "data_corruption", "target": "postgres-primary"})
	testharness.Eventually(t, 20*time.Second, "the resume step to wait for approval", func() bool {
		r, ok := first.run("corruption")
		return ok && r.State == store.RunAwaitingApproval
	})
	if got := replicas(); got != 0 {
		t.Fatalf("replicas after stop-writes = %d, want 0", got)
	}
	first.stop()

	second := startDaemon(t, dir, cfg)
	pending, err := second.eng.PendingApprovals()
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending approvals after restart = %v, %v", pending, err)
	}
	if _, err := second.eng.Decide(ctx, pending[0].ID, remediate.Decision{Approve: true, Actor: "oncall", Role: config.RoleApprover}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	var run store.Run
	testharness.Eventually(t, 20*time.Second, "the run to end", func() bool {
		var ok bool
		run, ok = second.run("corruption")
		return ok && !run.Active()
	})
	if run.State != store.RunSucceeded {
		t.Fatalf("run %s: %s", run.State, run.Reason)
	}
	if got := replicas(); got != seven {
		t.Errorf("replicas after resume = %d, want the earlier %d", got, seven)
	}
	res := run.Steps[1].Result
	if res["resolved_from"] != "stop-writes" || res["replicas"] != float64(7) {
		t.Errorf("resume result = %v", res)
	}

	// A step outside the Role fails with the API's refusal, journaled.
	second.fire(t, "breach", map[string]string{"alertname": "Intrusion", "scenario": "security_breach", "target": "app"})
	testharness.Eventually(t, 20*time.Second, "the breach run to end", func() bool {
		var ok bool
		run, ok = second.run("breach")
		return ok && !run.Active()
	})
	want := "kubernetes: forbidden: serviceaccount drguard cannot patch secrets in namespace " + k.Namespace
	if st := run.Steps[0]; run.State != store.RunFailed || st.State != store.StepFailed || !strings.Contains(st.Error, want) {
		t.Errorf("breach run %s, step %s: %q; want the step failed with %q", run.State, st.State, st.Error, want)
	}
}

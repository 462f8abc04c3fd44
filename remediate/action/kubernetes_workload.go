package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kuberetry "k8s.io/client-go/util/retry"

	"github.com/fruitfulplanet/drguard/internal/params"
)

// ReplicasPrevious is the replicas value that restores the count an
// earlier kubernetes.scale step found before it scaled.
const ReplicasPrevious = "previous"

// RestartedAtAnnotation is the pod template annotation kubectl rollout
// restart sets; changing it rolls the workload's pods.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// Scale sets a Deployment's or StatefulSet's replicas through the scale
// subresource and records the count it found, so that a later step can
// say `replicas: previous`.
//
// Params: name (required), kind (deployment or statefulset; default
// deployment), replicas (a number, or "previous"), from_step (the step
// whose recorded count "previous" restores; default: the most recent
// other scale step of the same workload in this run or in earlier runs of
// the policy on the same target), target, namespace.
//
// Result: kind, namespace, name, workload ("deployment/ns/name"),
// previous_replicas, replicas, scaled_at, and resolved_from when replicas
// was "previous".
type Scale struct{ kubeBase }

// scaleInfo declares scale destructive (scaling to 0 stops a service) and
// not idempotent: a blind re-run after a crash would record the count it
// set itself as the one to restore.
var scaleInfo = Info{Destructive: true}

// scaleParams is the params of kubernetes.scale.
type scaleParams struct {
	kubeCommon
	Kind workloadKind `param:"kind"`
	Name string       `param:"name"`
	// Replicas is a number, or "previous"; required.
	Replicas replicaCount `param:"replicas"`
	// FromStep is the step whose recorded count "previous" restores.
	FromStep string `param:"from_step"`
}

// replicaCount is a replica count, or -1 for "previous"; nil when unset.
type replicaCount struct{ n *int }

// UnmarshalMapstructure accepts a whole number, a numeric string or
// "previous".
func (r *replicaCount) UnmarshalMapstructure(v any) error {
	var n int
	switch x := v.(type) {
	case string:
		if strings.TrimSpace(x) == ReplicasPrevious {
			n = -1
			break
		}
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return fmt.Errorf("want a number or %q, got %q", ReplicasPrevious, x)
		}
		n = i
	case int:
		n = x
	case int64:
		n = int(x)
	case uint64:
		n = int(x)
	case float64:
		if x != float64(int(x)) {
			return fmt.Errorf("%v is not a whole number", x)
		}
		n = int(x)
	default:
		return fmt.Errorf("want a number or %q", ReplicasPrevious)
	}
	if n < 0 && !(n == -1 && isPrevious(v)) {
		return fmt.Errorf("must not be negative, got %d", n)
	}
	r.n = &n
	return nil
}

// isPrevious reports whether v is the word "previous".
func isPrevious(v any) bool {
	s, ok := v.(string)
	return ok && strings.TrimSpace(s) == ReplicasPrevious
}

func (p *scaleParams) defaults() { p.Kind = kindDeployment }

func (p *scaleParams) check(t params.Templates) error {
	if err := p.checkCommon(t); err != nil {
		return err
	}
	if err := checkKind(t, &p.Kind, kindDeployment, kindStatefulSet); err != nil {
		return err
	}
	if err := checkKubeName(t, "name", p.Name); err != nil {
		return err
	}
	switch {
	case p.Replicas.n == nil && t.Literal("replicas"):
		return params.Required("replicas", `a number, or "previous"`)
	case p.Replicas.n != nil && *p.Replicas.n >= 0 && p.FromStep != "":
		return params.Errorf("from_step", "applies only to replicas: previous")
	}
	return nil
}

func newScale(d Deps) (RunFunc[scaleParams], error) { return (&Scale{newKubeBase(d)}).run, nil }

// workloadID is how scale results name a workload: kind/namespace/name.
func workloadID(kind workloadKind, ns, name string) string {
	return string(kind) + "/" + ns + "/" + name
}

// run reads the current scale, resolves the wanted replicas, and updates
// the scale subresource (retrying on conflicting writes).
func (s *Scale) run(ctx context.Context, req Request, spec *scaleParams) (Outcome, error) {
	kc, err := s.resolve(req, spec.kubeCommon)
	if err != nil {
		return Outcome{}, err
	}
	id := workloadID(spec.Kind, kc.namespace, spec.Name)
	want, from := *spec.Replicas.n, ""
	if want < 0 {
		if want, from, err = previousReplicas(req, id, spec.FromStep); err != nil {
			return Outcome{}, err
		}
	}
	resource := string(spec.Kind) + "s/scale"
	var before int32
	verb := "get"
	err = kuberetry.RetryOnConflict(kuberetry.DefaultRetry, func() error {
		verb = "get"
		sc, err := getScale(ctx, kc, spec.Kind, spec.Name)
		if err != nil {
			return err
		}
		before = sc.Spec.Replicas
		if int(before) == want {
			return nil
		}
		verb = "update"
		sc.Spec.Replicas = int32(want)
		_, err = updateScale(ctx, kc, spec.Kind, spec.Name, sc)
		return err // a conflict is retried with a fresh read
	})
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{verb, resource, spec.Name, kc.namespace})
	}
	res := map[string]any{
		"kind": string(spec.Kind), "namespace": kc.namespace, "name": spec.Name, "workload": id,
		"previous_replicas": int(before), "replicas": want,
		"scaled_at": time.Now().UTC().Format(time.RFC3339Nano),
	}
	out := fmt.Sprintf("%s %s/%s scaled from %d to %d replicas", spec.Kind, kc.namespace, spec.Name, before, want)
	if int(before) == want {
		out = fmt.Sprintf("%s %s/%s already has %d replicas", spec.Kind, kc.namespace, spec.Name, want)
	}
	if from != "" {
		res["resolved_from"] = from
		out += fmt.Sprintf(" (previous count recorded by step %s)", from)
	}
	s.log.Info("kubernetes scale", "run", req.RunID, "step", req.Step, "workload", id, "from", before, "to", want)
	return Outcome{Output: out, Result: res}, nil
}

// previousReplicas finds the replica count to restore: the one recorded
// by step fromStep, or else by the most recent other scale step of the
// same workload among req.Previous.
func previousReplicas(req Request, id, fromStep string) (int, string, error) {
	if fromStep != "" {
		r, ok := req.Previous[fromStep]
		if !ok {
			return 0, "", fmt.Errorf("replicas: previous: step %q has no recorded result in this run or an earlier run of policy %s on %q", fromStep, req.Policy, req.Target)
		}
		if w, _ := r["workload"].(string); w != id {
			return 0, "", fmt.Errorf("replicas: previous: step %q scaled %q, not %s", fromStep, w, id)
		}
		n, err := recordedReplicas(r)
		if err != nil {
			return 0, "", fmt.Errorf("replicas: previous: step %q: %w", fromStep, err)
		}
		return n, fromStep, nil
	}
	type cand struct {
		step string
		at   string
	}
	var cands []cand
	for step, r := range req.Previous {
		if step == req.Step {
			continue // this step's own result from an earlier run
		}
		if w, _ := r["workload"].(string); w == id {
			at, _ := r["scaled_at"].(string)
			cands = append(cands, cand{step, at})
		}
	}
	if len(cands) == 0 {
		return 0, "", fmt.Errorf("replicas: previous: no earlier kubernetes.scale step of %s is recorded for policy %s on %q; name it with from_step or give a number", id, req.Policy, req.Target)
	}
	// RFC 3339 times in UTC sort as strings; the step name breaks ties.
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].at != cands[j].at {
			return cands[i].at > cands[j].at
		}
		return cands[i].step < cands[j].step
	})
	n, err := recordedReplicas(req.Previous[cands[0].step])
	if err != nil {
		return 0, "", fmt.Errorf("replicas: previous: step %q: %w", cands[0].step, err)
	}
	return n, cands[0].step, nil
}

func recordedReplicas(r map[string]any) (int, error) {
	v, ok := r["previous_replicas"]
	if !ok {
		return 0, errors.New("its result records no previous_replicas")
	}
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case float64:
		n = int(x)
		if float64(n) != x {
			n = -1
		}
	default:
		n = -1
	}
	if n < 0 {
		return 0, fmt.Errorf("its recorded previous_replicas %v is not a count", v)
	}
	return n, nil
}

func getScale(ctx context.Context, kc kubeCall, kind workloadKind, name string) (*autoscalingv1.Scale, error) {
	if kind == kindStatefulSet {
		return kc.client.AppsV1().StatefulSets(kc.namespace).GetScale(ctx, name, metav1.GetOptions{})
	}
	return kc.client.AppsV1().Deployments(kc.namespace).GetScale(ctx, name, metav1.GetOptions{})
}

func updateScale(ctx context.Context, kc kubeCall, kind workloadKind, name string, sc *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	if kind == kindStatefulSet {
		return kc.client.AppsV1().StatefulSets(kc.namespace).UpdateScale(ctx, name, sc, metav1.UpdateOptions{})
	}
	return kc.client.AppsV1().Deployments(kc.namespace).UpdateScale(ctx, name, sc, metav1.UpdateOptions{})
}

// RolloutRestart restarts a workload's pods the way `kubectl rollout
// restart` does: it sets the pod template annotation
// kubectl.kubernetes.io/restartedAt, and the controller rolls the pods.
//
// Params: name (required), kind (deployment, statefulset or daemonset;
// default deployment), target, namespace.
//
// Result: workload, restarted_at, generation.
type RolloutRestart struct{ kubeBase }

// rolloutRestartInfo declares rollout_restart not destructive (the
// controller replaces pods within the workload's disruption settings) and
// idempotent (a second restart only rolls the pods again).
var rolloutRestartInfo = Info{Idempotent: true}

// rolloutParams is the params of kubernetes.rollout_restart.
type rolloutParams struct {
	kubeCommon
	Kind workloadKind `param:"kind"`
	Name string       `param:"name"`
}

func (p *rolloutParams) defaults() { p.Kind = kindDeployment }

func (p *rolloutParams) check(t params.Templates) error {
	if err := p.checkCommon(t); err != nil {
		return err
	}
	if err := checkKind(t, &p.Kind, kindDeployment, kindStatefulSet, kindDaemonSet); err != nil {
		return err
	}
	return checkKubeName(t, "name", p.Name)
}

func newRolloutRestart(d Deps) (RunFunc[rolloutParams], error) {
	return (&RolloutRestart{newKubeBase(d)}).run, nil
}

// run patches the pod template annotation.
func (r *RolloutRestart) run(ctx context.Context, req Request, spec *rolloutParams) (Outcome, error) {
	kind, name := spec.Kind, spec.Name
	kc, err := r.resolve(req, spec.kubeCommon)
	if err != nil {
		return Outcome{}, err
	}
	now := time.Now().UTC().Format(time.RFC3339)
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{RestartedAtAnnotation: now}}}}})
	apps := kc.client.AppsV1()
	var meta metav1.Object
	switch kind {
	case kindStatefulSet:
		meta, err = apps.StatefulSets(kc.namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	case kindDaemonSet:
		meta, err = apps.DaemonSets(kc.namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	default:
		meta, err = apps.Deployments(kc.namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{"patch", string(kind) + "s", name, kc.namespace})
	}
	id := workloadID(kind, kc.namespace, name)
	r.log.Info("kubernetes rollout restart", "run", req.RunID, "step", req.Step, "workload", id)
	return Outcome{
		Output: fmt.Sprintf("%s %s/%s restarted at %s (generation %d)", kind, kc.namespace, name, now, meta.GetGeneration()),
		Result: map[string]any{"workload": id, "restarted_at": now, "generation": meta.GetGeneration()},
	}, nil
}

// preflightScale checks that drguard may read and update the workload's
// scale subresource, and that the workload exists.
func preflightScale(d Deps) PreflightFunc[scaleParams] {
	b := newKubeBase(d)
	return func(ctx context.Context, req Request, p *scaleParams) Preflight {
		res := string(p.Kind) + "s"
		return b.preflight(ctx, req, p.kubeCommon, p.Name, []kubeNeed{{"get", "apps", res, "scale"}, {"update", "apps", res, "scale"}},
			func(ctx context.Context, kc kubeCall) error {
				_, err := getScale(ctx, kc, p.Kind, p.Name)
				return err
			})
	}
}

// preflightRolloutRestart checks that drguard may patch the workload, and
// that it exists (a server-side dry run of an empty patch).
func preflightRolloutRestart(d Deps) PreflightFunc[rolloutParams] {
	b := newKubeBase(d)
	return func(ctx context.Context, req Request, p *rolloutParams) Preflight {
		return b.preflight(ctx, req, p.kubeCommon, p.Name, []kubeNeed{{"patch", "apps", string(p.Kind) + "s", ""}},
			func(ctx context.Context, kc kubeCall) error {
				apps := kc.client.AppsV1()
				var err error
				switch p.Kind {
				case kindStatefulSet:
					_, err = apps.StatefulSets(kc.namespace).Patch(ctx, p.Name, types.MergePatchType, emptyPatch, dryRunPatch)
				case kindDaemonSet:
					_, err = apps.DaemonSets(kc.namespace).Patch(ctx, p.Name, types.MergePatchType, emptyPatch, dryRunPatch)
				default:
					_, err = apps.Deployments(kc.namespace).Patch(ctx, p.Name, types.MergePatchType, emptyPatch, dryRunPatch)
				}
				return err
			})
	}
}

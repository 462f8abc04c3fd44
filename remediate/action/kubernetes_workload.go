package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kuberetry "k8s.io/client-go/util/retry"
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

var _ Action = (*Scale)(nil)

// NewScale builds the kubernetes.scale action.
func NewScale(d Deps) (Action, error) { return &Scale{newKubeBase(d)}, nil }

// Info declares scale destructive (scaling to 0 stops a service) and not
// idempotent: a blind re-run after a crash would record the count it set
// itself as the one to restore.
func (*Scale) Info() Info { return Info{Destructive: true} }

type scaleSpec struct {
	kind     workloadKind
	name     string
	replicas int // -1: previous
	fromStep string
}

// Validate checks the unrendered params.
func (*Scale) Validate(params map[string]any) error {
	if err := checkKnown(params, append(kubeCommonParams, "kind", "name", "replicas", "from_step")...); err != nil {
		return err
	}
	if err := validateKubeCommon(params); err != nil {
		return err
	}
	_, err := scaleParams(params, true)
	return err
}

func scaleParams(params map[string]any, unrendered bool) (scaleSpec, error) {
	var s scaleSpec
	var err error
	if s.kind, err = kindParam(params, unrendered, kindDeployment, kindStatefulSet); err != nil {
		return s, err
	}
	if s.name, err = validateKubeName(params, "name", unrendered); err != nil {
		return s, err
	}
	if s.fromStep, err = stringParam(params, "from_step", ""); err != nil {
		return s, err
	}
	v, ok := params["replicas"]
	if !ok || v == nil {
		return s, errors.New(`param "replicas" is required: a number, or "previous"`)
	}
	if str, isStr := v.(string); isStr && strings.TrimSpace(str) == ReplicasPrevious {
		s.replicas = -1
		return s, nil
	}
	if str, isStr := v.(string); isStr && unrendered && isTemplate(str) {
		return s, nil
	}
	n, err := toInt(v)
	if err != nil {
		return s, fmt.Errorf(`param "replicas": want a number or "previous": %w`, err)
	}
	if n < 0 {
		return s, fmt.Errorf(`param "replicas" must not be negative, got %d`, n)
	}
	if s.fromStep != "" {
		return s, errors.New(`param "from_step" applies only to replicas: previous`)
	}
	s.replicas = n
	return s, nil
}

// workloadID is how scale results name a workload: kind/namespace/name.
func workloadID(kind workloadKind, ns, name string) string {
	return string(kind) + "/" + ns + "/" + name
}

// Run reads the current scale, resolves the wanted replicas, and updates
// the scale subresource (retrying on conflicting writes).
func (s *Scale) Run(ctx context.Context, req Request) (Outcome, error) {
	spec, err := scaleParams(req.Params, false)
	if err != nil {
		return Outcome{}, err
	}
	kc, err := s.resolve(req)
	if err != nil {
		return Outcome{}, err
	}
	id := workloadID(spec.kind, kc.namespace, spec.name)
	want, from := spec.replicas, ""
	if want < 0 {
		if want, from, err = previousReplicas(req, id, spec.fromStep); err != nil {
			return Outcome{}, err
		}
	}
	resource := string(spec.kind) + "s/scale"
	var before int32
	verb := "get"
	err = kuberetry.RetryOnConflict(kuberetry.DefaultRetry, func() error {
		verb = "get"
		sc, err := getScale(ctx, kc, spec.kind, spec.name)
		if err != nil {
			return err
		}
		before = sc.Spec.Replicas
		if int(before) == want {
			return nil
		}
		verb = "update"
		sc.Spec.Replicas = int32(want)
		_, err = updateScale(ctx, kc, spec.kind, spec.name, sc)
		return err // a conflict is retried with a fresh read
	})
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{verb, resource, spec.name, kc.namespace})
	}
	res := map[string]any{
		"kind": string(spec.kind), "namespace": kc.namespace, "name": spec.name, "workload": id,
		"previous_replicas": int(before), "replicas": want,
		"scaled_at": time.Now().UTC().Format(time.RFC3339Nano),
	}
	out := fmt.Sprintf("%s %s/%s scaled from %d to %d replicas", spec.kind, kc.namespace, spec.name, before, want)
	if int(before) == want {
		out = fmt.Sprintf("%s %s/%s already has %d replicas", spec.kind, kc.namespace, spec.name, want)
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
	n, err := toInt(v)
	if err != nil || n < 0 {
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

var _ Action = (*RolloutRestart)(nil)

// NewRolloutRestart builds the kubernetes.rollout_restart action.
func NewRolloutRestart(d Deps) (Action, error) { return &RolloutRestart{newKubeBase(d)}, nil }

// Info declares rollout_restart not destructive (the controller replaces
// pods within the workload's disruption settings) and idempotent (a second
// restart only rolls the pods again).
func (*RolloutRestart) Info() Info { return Info{Idempotent: true} }

// Validate checks the unrendered params.
func (*RolloutRestart) Validate(params map[string]any) error {
	if err := checkKnown(params, append(kubeCommonParams, "kind", "name")...); err != nil {
		return err
	}
	if err := validateKubeCommon(params); err != nil {
		return err
	}
	if _, err := kindParam(params, true, kindDeployment, kindStatefulSet, kindDaemonSet); err != nil {
		return err
	}
	_, err := validateKubeName(params, "name", true)
	return err
}

// Run patches the pod template annotation.
func (r *RolloutRestart) Run(ctx context.Context, req Request) (Outcome, error) {
	kind, err := kindParam(req.Params, false, kindDeployment, kindStatefulSet, kindDaemonSet)
	if err != nil {
		return Outcome{}, err
	}
	name, err := validateKubeName(req.Params, "name", false)
	if err != nil {
		return Outcome{}, err
	}
	kc, err := r.resolve(req)
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

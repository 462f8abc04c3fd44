package action

import (
	"context"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of kubernetes.pod_logs: the plan's `kubectl logs --tail=1000`,
// and the journal's bound on a step's output.
const (
	DefaultPodLogTailLines = 1000
	DefaultPodLogMaxBytes  = 64 << 10
)

// DeletePod deletes one pod so that its controller recreates it: the
// plan's `kubectl delete pod postgres-0`. It deletes exactly the pod it
// read (a UID precondition), so a replacement created meanwhile survives.
//
// Params: name (required), grace_period_seconds (default: the pod's own),
// target, namespace.
//
// Result: pod, namespace, uid, node, phase, deleted (false when the pod
// was already gone or terminating).
type DeletePod struct{ kubeBase }

var _ Action = (*DeletePod)(nil)

// NewDeletePod builds the kubernetes.delete_pod action.
func NewDeletePod(d Deps) (Action, error) { return &DeletePod{newKubeBase(d)}, nil }

// Info declares delete_pod destructive (it kills a running process, so it
// counts against the destructive budget) and idempotent (a pod already
// gone is success).
func (*DeletePod) Info() Info { return Info{Destructive: true, Idempotent: true} }

// Validate checks the unrendered params.
func (*DeletePod) Validate(params map[string]any) error {
	if err := checkKnown(params, append(kubeCommonParams, "name", "grace_period_seconds")...); err != nil {
		return err
	}
	if err := validateKubeCommon(params); err != nil {
		return err
	}
	if _, err := validateKubeName(params, "name", true); err != nil {
		return err
	}
	g, err := intParam(params, "grace_period_seconds", 0, true)
	if err == nil && g < 0 {
		err = fmt.Errorf(`param "grace_period_seconds" must not be negative, got %d`, g)
	}
	return err
}

// Run reads the pod and deletes it.
func (p *DeletePod) Run(ctx context.Context, req Request) (Outcome, error) {
	name, err := validateKubeName(req.Params, "name", false)
	if err != nil {
		return Outcome{}, err
	}
	var grace *int64
	if _, ok := req.Params["grace_period_seconds"]; ok {
		g, err := intParam(req.Params, "grace_period_seconds", 0, false)
		if err != nil {
			return Outcome{}, err
		}
		g64 := int64(g)
		grace = &g64
	}
	kc, err := p.resolve(req)
	if err != nil {
		return Outcome{}, err
	}
	pods := kc.client.CoreV1().Pods(kc.namespace)
	res := map[string]any{"pod": name, "namespace": kc.namespace, "deleted": false}
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Outcome{Output: fmt.Sprintf("pod %s/%s is already gone", kc.namespace, name), Result: res}, nil
	}
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{"get", "pods", name, kc.namespace})
	}
	res["uid"], res["node"], res["phase"] = string(pod.UID), pod.Spec.NodeName, string(pod.Status.Phase)
	if pod.DeletionTimestamp != nil {
		return Outcome{Output: fmt.Sprintf("pod %s/%s is already terminating since %s", kc.namespace, name, pod.DeletionTimestamp.UTC().Format("15:04:05Z")), Result: res}, nil
	}
	uid := pod.UID
	err = pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsNotFound(err):
		return Outcome{Output: fmt.Sprintf("pod %s/%s disappeared before drguard deleted it", kc.namespace, name), Result: res}, nil
	case apierrors.IsConflict(err):
		return Outcome{Output: fmt.Sprintf("pod %s/%s was already replaced (new UID); the replacement was left running", kc.namespace, name), Result: res}, nil
	case err != nil:
		return Outcome{}, kubeError(ctx, err, kubeObject{"delete", "pods", name, kc.namespace})
	}
	res["deleted"] = true
	p.log.Info("kubernetes pod deleted", "run", req.RunID, "step", req.Step, "pod", kc.namespace+"/"+name, "uid", uid)
	return Outcome{
		Output: fmt.Sprintf("pod %s/%s (uid %s, node %q, phase %s) deleted", kc.namespace, name, uid, pod.Spec.NodeName, pod.Status.Phase),
		Result: res,
	}, nil
}

// PodLogs captures the end of a pod's log as evidence in the journal: the
// plan's `kubectl logs postgres-0 --tail=1000`.
//
// Params: name (required), container (default: the pod's only one),
// tail_lines (default 1000), max_bytes (default 64 KiB), previous (the
// previous, crashed container's log), target, namespace.
//
// Result: pod, container, bytes, truncated.
type PodLogs struct{ kubeBase }

var _ Action = (*PodLogs)(nil)

// NewPodLogs builds the kubernetes.pod_logs action.
func NewPodLogs(d Deps) (Action, error) { return &PodLogs{newKubeBase(d)}, nil }

// Info declares pod_logs read-only: not destructive, idempotent.
func (*PodLogs) Info() Info { return Info{Idempotent: true} }

type podLogsSpec struct {
	name, container string
	tail, maxBytes  int
	previous        bool
}

// Validate checks the unrendered params.
func (*PodLogs) Validate(params map[string]any) error {
	if err := checkKnown(params, append(kubeCommonParams, "name", "container", "tail_lines", "max_bytes", "previous")...); err != nil {
		return err
	}
	if err := validateKubeCommon(params); err != nil {
		return err
	}
	_, err := podLogsParams(params, true)
	return err
}

func podLogsParams(params map[string]any, unrendered bool) (podLogsSpec, error) {
	var s podLogsSpec
	var err error
	if s.name, err = validateKubeName(params, "name", unrendered); err != nil {
		return s, err
	}
	if s.container, err = stringParam(params, "container", ""); err != nil {
		return s, err
	}
	if s.tail, err = intParam(params, "tail_lines", DefaultPodLogTailLines, unrendered); err != nil {
		return s, err
	}
	if s.maxBytes, err = intParam(params, "max_bytes", DefaultPodLogMaxBytes, unrendered); err != nil {
		return s, err
	}
	if s.tail <= 0 || s.maxBytes <= 0 {
		return s, errors.New(`params "tail_lines" and "max_bytes" must be positive`)
	}
	s.previous, err = boolParam(params, "previous", false, unrendered)
	return s, err
}

// Run streams the log's tail, bounded by max_bytes on the server and here.
func (p *PodLogs) Run(ctx context.Context, req Request) (Outcome, error) {
	spec, err := podLogsParams(req.Params, false)
	if err != nil {
		return Outcome{}, err
	}
	kc, err := p.resolve(req)
	if err != nil {
		return Outcome{}, err
	}
	tail, limit := int64(spec.tail), int64(spec.maxBytes)
	opts := &corev1.PodLogOptions{Container: spec.container, TailLines: &tail, LimitBytes: &limit, Previous: spec.previous, Timestamps: true}
	stream, err := kc.client.CoreV1().Pods(kc.namespace).GetLogs(spec.name, opts).Stream(ctx)
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{"get", "pods/log", spec.name, kc.namespace})
	}
	defer stream.Close()
	buf := &cappedBuffer{max: spec.maxBytes}
	n, err := io.Copy(buf, io.LimitReader(stream, limit+1))
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{"get", "pods/log", spec.name, kc.namespace})
	}
	text := buf.String()
	if n == 0 {
		text = fmt.Sprintf("(no log output from pod %s/%s)", kc.namespace, spec.name)
	}
	return Outcome{
		Output: text,
		Result: map[string]any{"pod": spec.name, "namespace": kc.namespace, "container": spec.container,
			"bytes": min(n, limit), "truncated": n >= limit},
	}, nil
}

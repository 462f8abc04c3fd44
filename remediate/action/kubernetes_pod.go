package action

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fruitfulplanet/drguard/internal/params"
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
// Result: pod, namespace, uid, node, phase, deleted (false when the pod
// was already gone or terminating).
type DeletePod struct{ kubeBase }

// deletePodInfo declares delete_pod destructive (it kills a running
// process, so it counts against the destructive budget) and idempotent (a
// pod already gone is success).
var deletePodInfo = Info{Destructive: true, Idempotent: true}

// deletePodParams is the params of kubernetes.delete_pod.
type deletePodParams struct {
	kubeCommon
	Name string `param:"name"`
	// GracePeriodSeconds overrides the pod's own grace period.
	GracePeriodSeconds *int64 `param:"grace_period_seconds"`
}

func (p *deletePodParams) check(t params.Templates) error {
	if err := p.checkCommon(t); err != nil {
		return err
	}
	if err := checkKubeName(t, "name", p.Name); err != nil {
		return err
	}
	if g := p.GracePeriodSeconds; g != nil && *g < 0 {
		return params.Errorf("grace_period_seconds", "must not be negative, got %d", *g)
	}
	return nil
}

func newDeletePod(d Deps) (RunFunc[deletePodParams], error) {
	return (&DeletePod{newKubeBase(d)}).run, nil
}

// run reads the pod and deletes it.
func (p *DeletePod) run(ctx context.Context, req Request, spec *deletePodParams) (Outcome, error) {
	name, grace := spec.Name, spec.GracePeriodSeconds
	kc, err := p.resolve(req, spec.kubeCommon)
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
// Result: pod, container, bytes, truncated.
type PodLogs struct{ kubeBase }

// podLogsInfo declares pod_logs read-only: not destructive, idempotent.
var podLogsInfo = Info{Idempotent: true}

// podLogsParams is the params of kubernetes.pod_logs.
type podLogsParams struct {
	kubeCommon
	Name      string `param:"name"`
	Container string `param:"container"`
	TailLines int    `param:"tail_lines"`
	MaxBytes  int    `param:"max_bytes"`
	Previous  bool   `param:"previous"`
}

func (p *podLogsParams) defaults() {
	p.TailLines, p.MaxBytes = DefaultPodLogTailLines, DefaultPodLogMaxBytes
}

func (p *podLogsParams) check(t params.Templates) error {
	if err := p.checkCommon(t); err != nil {
		return err
	}
	if err := checkKubeName(t, "name", p.Name); err != nil {
		return err
	}
	if p.TailLines <= 0 && t.Literal("tail_lines") {
		return params.Errorf("tail_lines", "must be positive")
	}
	if p.MaxBytes <= 0 && t.Literal("max_bytes") {
		return params.Errorf("max_bytes", "must be positive")
	}
	return nil
}

func newPodLogs(d Deps) (RunFunc[podLogsParams], error) {
	return (&PodLogs{newKubeBase(d)}).run, nil
}

// run streams the log's tail, bounded by max_bytes on the server and here.
func (p *PodLogs) run(ctx context.Context, req Request, spec *podLogsParams) (Outcome, error) {
	kc, err := p.resolve(req, spec.kubeCommon)
	if err != nil {
		return Outcome{}, err
	}
	tail, limit := int64(spec.TailLines), int64(spec.MaxBytes)
	opts := &corev1.PodLogOptions{Container: spec.Container, TailLines: &tail, LimitBytes: &limit, Previous: spec.Previous, Timestamps: true}
	stream, err := kc.client.CoreV1().Pods(kc.namespace).GetLogs(spec.Name, opts).Stream(ctx)
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{"get", "pods/log", spec.Name, kc.namespace})
	}
	defer stream.Close()
	buf := &cappedBuffer{max: spec.MaxBytes}
	n, err := io.Copy(buf, io.LimitReader(stream, limit+1))
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{"get", "pods/log", spec.Name, kc.namespace})
	}
	text := buf.String()
	if n == 0 {
		text = fmt.Sprintf("(no log output from pod %s/%s)", kc.namespace, spec.Name)
	}
	return Outcome{
		Output: text,
		Result: map[string]any{"pod": spec.Name, "namespace": kc.namespace, "container": spec.Container,
			"bytes": min(n, limit), "truncated": n >= limit},
	}, nil
}

// preflightDeletePod checks that drguard may read and delete the pod, and
// that it exists.
func preflightDeletePod(d Deps) PreflightFunc[deletePodParams] {
	b := newKubeBase(d)
	return func(ctx context.Context, req Request, p *deletePodParams) Preflight {
		return b.preflight(ctx, req, p.kubeCommon, p.Name, []kubeNeed{{"get", "", "pods", ""}, {"delete", "", "pods", ""}},
			func(ctx context.Context, kc kubeCall) error {
				_, err := kc.client.CoreV1().Pods(kc.namespace).Get(ctx, p.Name, metav1.GetOptions{})
				return err
			})
	}
}

// preflightPodLogs checks that drguard may read the pod's log, and that
// the pod exists (reading one byte of its log; a log that cannot be read
// yet, a container not started, is not a missing pod).
func preflightPodLogs(d Deps) PreflightFunc[podLogsParams] {
	b := newKubeBase(d)
	return func(ctx context.Context, req Request, p *podLogsParams) Preflight {
		return b.preflight(ctx, req, p.kubeCommon, p.Name, []kubeNeed{{"get", "", "pods", "log"}},
			func(ctx context.Context, kc kubeCall) error {
				one := int64(1)
				_, err := kc.client.CoreV1().Pods(kc.namespace).GetLogs(p.Name, &corev1.PodLogOptions{
					Container: p.Container, Previous: p.Previous, LimitBytes: &one, TailLines: &one,
				}).DoRaw(ctx)
				if apierrors.IsBadRequest(err) {
					return nil
				}
				return err
			})
	}
}

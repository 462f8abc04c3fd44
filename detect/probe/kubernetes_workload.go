package probe

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/fruitfulplanet/drguard/internal/params"
)

// Workload kinds kubernetes_workload checks.
const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
)

// workloadParams is the params of kubernetes_workload.
type workloadParams struct {
	// Kind is Deployment (default) or StatefulSet.
	Kind string `param:"kind"`
	// Name is the workload's name; required.
	Name string `param:"name"`
	// Namespace overrides the target's namespace.
	Namespace string `param:"namespace"`
	// MinReady is how many ready replicas are enough (default: all
	// desired replicas).
	MinReady *int32 `param:"min_ready"`
	// MaxCrashLooping is how many of the workload's pods may be in
	// CrashLoopBackOff (default 0).
	MaxCrashLooping int `param:"max_crashlooping"`
}

func (c *workloadParams) check() error {
	switch strings.ToLower(c.Kind) {
	case "", "deployment":
		c.Kind = kindDeployment
	case "statefulset":
		c.Kind = kindStatefulSet
	default:
		return params.Errorf("kind", "%q: want Deployment or StatefulSet", c.Kind)
	}
	if c.Name == "" {
		return params.Required("name", "the workload's name")
	}
	return nil
}

func compileKubernetesWorkload(p config.Probe, cfg *config.Config) (Runner, error) {
	return compileKind(p, cfg, &workloadParams{}, kubernetesTarget, kubernetesWorkload)
}

// workloadStatus is what the probe reads from a Deployment or StatefulSet.
type workloadStatus struct {
	desired, ready, available, updated int32
	selector                           *metav1.LabelSelector
}

// kubernetesWorkload compares a Deployment's or StatefulSet's ready
// replicas with the desired count and counts its pods in CrashLoopBackOff.
func kubernetesWorkload(ctx context.Context, env Env, t config.KubernetesTarget, c *workloadParams) detect.Result {
	ns := cmp.Or(c.Namespace, t.Namespace, metav1.NamespaceDefault)
	client, err := env.kubeClient(t)
	if err != nil {
		return fail("kubernetes target %s: %v", t.Name, err)
	}
	what := fmt.Sprintf("%s %s/%s", c.Kind, ns, c.Name)
	st, err := readWorkload(ctx, client, c.Kind, ns, c.Name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fail("%s not found", what)
		}
		return fail("reading %s: %v", what, err)
	}
	r := newResult()
	r.observe("desired_replicas", float64(st.desired))
	r.observe("ready_replicas", float64(st.ready))
	r.observe("available_replicas", float64(st.available))
	r.observe("updated_replicas", float64(st.updated))
	want := st.desired
	if c.MinReady != nil {
		want = *c.MinReady
	}
	if st.ready < want {
		r.failf("%s has %d of %d desired replicas ready (want %d)", what, st.ready, st.desired, want)
	}
	if st.selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(st.selector)
		if err != nil {
			r.failf("%s: bad selector: %v", what, err)
			return r.done()
		}
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			r.failf("listing pods of %s: %v", what, err)
			return r.done()
		}
		var crashing []string
		for _, pod := range pods.Items {
			for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
				if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
					crashing = append(crashing, pod.Name+"/"+cs.Name)
					break
				}
			}
		}
		r.observe("pods", float64(len(pods.Items)))
		r.observe("crashloop_pods", float64(len(crashing)))
		if len(crashing) > c.MaxCrashLooping {
			r.failf("%s has %d pod(s) in CrashLoopBackOff: %s", what, len(crashing), strings.Join(crashing, ", "))
		}
	}
	return r.done()
}

// readWorkload reads the replica counts and selector of a workload.
func readWorkload(ctx context.Context, client kubernetes.Interface, kind, ns, name string) (workloadStatus, error) {
	var st workloadStatus
	switch kind {
	case kindStatefulSet:
		s, err := client.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return st, err
		}
		st = workloadStatus{desired: replicasOr1(s.Spec.Replicas), ready: s.Status.ReadyReplicas,
			available: s.Status.AvailableReplicas, updated: s.Status.UpdatedReplicas, selector: s.Spec.Selector}
	default:
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return st, err
		}
		st = workloadStatus{desired: replicasOr1(d.Spec.Replicas), ready: d.Status.ReadyReplicas,
			available: d.Status.AvailableReplicas, updated: d.Status.UpdatedReplicas, selector: d.Spec.Selector}
	}
	return st, nil
}

// replicasOr1 applies Kubernetes' default of one replica.
func replicasOr1(n *int32) int32 {
	if n == nil {
		return 1
	}
	return *n
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Workload kinds kubernetes_workload checks.
const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
)

// workloadConfig is the params of kubernetes_workload.
type workloadConfig struct {
	// Kind is Deployment (default) or StatefulSet.
	Kind string `json:"kind"`
	// Name is the workload's name; required.
	Name string `json:"name"`
	// Namespace overrides the target's namespace.
	Namespace string `json:"namespace"`
	// MinReady is how many ready replicas are enough (default: all
	// desired replicas).
	MinReady *int32 `json:"min_ready"`
	// MaxCrashLooping is how many of the workload's pods may be in
	// CrashLoopBackOff (default 0).
	MaxCrashLooping int `json:"max_crashlooping"`
}

func workloadSettings(p config.Probe) (workloadConfig, error) {
	var c workloadConfig
	if err := decodeParams(p, &c); err != nil {
		return c, err
	}
	switch strings.ToLower(c.Kind) {
	case "", "deployment":
		c.Kind = kindDeployment
	case "statefulset":
		c.Kind = kindStatefulSet
	default:
		return c, fmt.Errorf("params: kind %q: want Deployment or StatefulSet", c.Kind)
	}
	if c.Name == "" {
		return c, errors.New("params: name is required")
	}
	return c, nil
}

func validateKubernetesWorkload(p config.Probe, c *config.Config) error {
	_, terr := kubernetesTarget(c, p.Target)
	_, perr := workloadSettings(p)
	return errors.Join(terr, perr)
}

// workloadStatus is what the probe reads from a Deployment or StatefulSet.
type workloadStatus struct {
	desired, ready, available, updated int32
	selector                           *metav1.LabelSelector
}

// KubernetesWorkload compares a Deployment's or StatefulSet's ready
// replicas with the desired count and counts its pods in CrashLoopBackOff.
func KubernetesWorkload(ctx context.Context, env Env, p config.Probe) detect.Result {
	c, err := workloadSettings(p)
	if err != nil {
		return fail("%v", err)
	}
	t, err := kubernetesTarget(env.Config, p.Target)
	if err != nil {
		return fail("%v", err)
	}
	ns := c.Namespace
	if ns == "" {
		ns = t.Namespace
	}
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
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

// kubeClient returns the cached client for t: from its kubeconfig, or the
// in-cluster configuration when it has none.
func (e Env) kubeClient(t config.KubernetesTarget) (kubernetes.Interface, error) {
	return cached(e, func(s *shared) map[string]kubernetes.Interface { return s.kube }, t.Name,
		func() (kubernetes.Interface, error) {
			var cfg *rest.Config
			var err error
			if t.Kubeconfig != "" {
				cfg, err = clientcmd.BuildConfigFromFlags("", t.Kubeconfig)
			} else {
				cfg, err = rest.InClusterConfig()
			}
			if err != nil {
				return nil, err
			}
			cfg.UserAgent = "drguard-probe"
			return kubernetes.NewForConfig(cfg)
		})
}

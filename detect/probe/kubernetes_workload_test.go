package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// kubeconfigFor writes a kubeconfig that authenticates with token.
func kubeconfigFor(t *testing.T, k *testharness.Kube, token string) string {
	t.Helper()
	return testharness.WriteKubeconfig(t, "test", map[string]testharness.KubeContext{"test": {Kube: k, Token: token}})
}

// TestKubernetesWorkloadContext proves that a target's context chooses the
// cluster the probe talks to: two kube-apiservers hold a Deployment of the
// same name and namespace, ready in one and not in the other; a kubeconfig
// has a context for each. The target without a context reads the current
// context's cluster, the target with `context: dr` reads the other.
func TestKubernetesWorkloadContext(t *testing.T) {
	main, dr := testharness.KubeAPIServer(t), testharness.StartKubeAPIServer(t)
	ns := main.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, c := range []struct {
		k     *testharness.Kube
		ready int32
	}{{main, 2}, {dr, 0}} {
		admin := c.k.AdminClient(t)
		if c.k == dr {
			if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		createDeployment(ctx, t, admin, ns, "web", 2, c.ready)
	}
	kubeconfig := testharness.WriteKubeconfig(t, "main", map[string]testharness.KubeContext{
		"main": {Kube: main, Token: main.AdminToken}, "dr": {Kube: dr, Token: dr.AdminToken}})
	cfg := &config.Config{Targets: config.Targets{Kubernetes: []config.KubernetesTarget{
		{Name: "primary", Kubeconfig: kubeconfig, Namespace: ns},
		{Name: "dr-region", Kubeconfig: kubeconfig, Context: "dr", Namespace: ns},
	}}}
	env, _ := testEnv(t, cfg)
	mustOK(t, "current context (ready cluster)", runOnce(t, env, mkProbe("a", "kubernetes_workload", "primary", time.Second, map[string]any{"name": "web"})))
	mustFail(t, "context dr (cluster with nothing ready)", runOnce(t, env, mkProbe("b", "kubernetes_workload", "dr-region", time.Second,
		map[string]any{"name": "web"})), "has 0 of 2 desired replicas ready")
}

// createDeployment creates a Deployment with replicas desired and sets the
// status a controller would, with ready replicas ready.
func createDeployment(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns, name string, replicas, ready int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	dep, err := admin.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "example/web:1"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Status = appsv1.DeploymentStatus{Replicas: replicas, ReadyReplicas: ready, AvailableReplicas: ready, UpdatedReplicas: replicas,
		ObservedGeneration: dep.Generation}
	if _, err := admin.AppsV1().Deployments(ns).UpdateStatus(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestKubernetesWorkload runs against a real kube-apiserver, as a
// ServiceAccount holding only the Role docs/probes.md documents: a
// Deployment with fewer ready replicas than desired fires, a pod in
// CrashLoopBackOff is counted, and a fully ready Deployment resolves.
func TestKubernetesWorkload(t *testing.T) {
	k := testharness.KubeAPIServer(t)
	ns := k.NewNamespace(t)
	admin := k.AdminClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	grantProbeRole(ctx, t, admin, ns)
	token := k.TokenFor(t, ns, "drguard")

	two := int32(2)
	labels := map[string]string{"app": "web"}
	dep, err := admin.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example/web:1"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No controller-manager runs: set the status the controller would.
	setStatus := func(ready int32) {
		t.Helper()
		dep.Status = appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: ready, AvailableReplicas: ready, UpdatedReplicas: 2,
			ObservedGeneration: dep.Generation}
		if dep, err = admin.AppsV1().Deployments(ns).UpdateStatus(ctx, dep, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(1)

	cfg := &config.Config{Targets: config.Targets{Kubernetes: []config.KubernetesTarget{
		{Name: "cluster", Service: "shop", Kubeconfig: kubeconfigFor(t, k, token), Namespace: ns}}}}
	env, _ := testEnv(t, cfg)
	p := mkProbe("web-replicas", "kubernetes_workload", "cluster", 200*time.Millisecond, map[string]any{"name": "web"})
	r := runOnce(t, env, p)
	mustFail(t, "1 of 2 ready", r, "has 1 of 2 desired replicas ready")
	if r.Observations["desired_replicas"] != 2 || r.Observations["ready_replicas"] != 1 {
		t.Errorf("observations %v", r.Observations)
	}
	_, rec := startScheduler(t, env, p)
	d := rec.waitStatus(t, p.Name, detect.StatusFiring, 5*time.Second)
	if !strings.Contains(d.Evidence.Reason, "Deployment "+ns+"/web has 1 of 2") {
		t.Errorf("reason %q", d.Evidence.Reason)
	}

	pod, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example/web:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: "example/web:1",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	setStatus(2)
	r = runOnce(t, env, p)
	mustFail(t, "crash-looping pod", r, "1 pod(s) in CrashLoopBackOff: web-1/web")
	if r.Observations["crashloop_pods"] != 1 {
		t.Errorf("observations %v", r.Observations)
	}

	if err := admin.CoreV1().Pods(ns).Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	rec.waitStatus(t, p.Name, detect.StatusResolved, 10*time.Second)
	mustFail(t, "missing StatefulSet", runOnce(t, env, mkProbe("pg", "kubernetes_workload", "cluster", time.Second,
		map[string]any{"kind": "StatefulSet", "name": "postgres"})), "StatefulSet "+ns+"/postgres not found")
}

// grantProbeRole gives ServiceAccount drguard in ns the Role that
// kubernetes_workload needs: get Deployments and StatefulSets, list Pods.
func grantProbeRole(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "drguard-probe"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
	}}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "drguard-probe"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "drguard-probe"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "drguard", Namespace: ns}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

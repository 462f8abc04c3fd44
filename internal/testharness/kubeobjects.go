package testharness

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SeedPlan creates, as admin, in namespace ns the objects the DR plan's
// scenarios act on: Deployment fruitfulplanet-app (3 replicas),
// StatefulSet postgres (1), DaemonSet node-agent, pods postgres-0 and
// web-0, and Secrets app-secrets and other-secret (each with key KEEP).
// Objects that already exist are left as they are. Without a
// controller-manager nothing runs: the objects are there to be read,
// scaled, patched and deleted.
func (k *Kube) SeedPlan(t testing.TB, ns string) {
	t.Helper()
	c := k.AdminClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	labels := map[string]string{"app": "fruitfulplanet-app"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
	}
	three, one := int32(3), int32(1)
	pgLabels := map[string]string{"app": "postgres"}
	pgTmpl := tmpl.DeepCopy()
	pgTmpl.Labels = pgLabels
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }
	created := func(what string, err error) {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("testharness: create %s in %s: %v", what, ns, err)
		}
	}
	// Pods need the namespace's default ServiceAccount, which only a
	// controller-manager would create.
	if err := ensureServiceAccount(ctx, c, ns, "default"); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	opts := metav1.CreateOptions{}
	_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: meta("fruitfulplanet-app"),
		Spec: appsv1.DeploymentSpec{Replicas: &three, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, opts)
	created("deployment fruitfulplanet-app", err)
	_, err = c.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: meta("postgres"),
		Spec: appsv1.StatefulSetSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: pgLabels}, Template: *pgTmpl}}, opts)
	created("statefulset postgres", err)
	_, err = c.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: meta("node-agent"),
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, opts)
	created("daemonset node-agent", err)
	for _, name := range []string{"postgres-0", "web-0"} {
		pod := &corev1.Pod{ObjectMeta: meta(name), Spec: tmpl.Spec}
		pod.Labels = pgLabels
		_, err = c.CoreV1().Pods(ns).Create(ctx, pod, opts)
		created("pod "+name, err)
	}
	for _, name := range []string{"app-secrets", "other-secret"} {
		_, err = c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: meta(name), Data: map[string][]byte{"KEEP": []byte("kept")}}, opts)
		created("secret "+name, err)
	}
}

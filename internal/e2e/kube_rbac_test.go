package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/fruitfulplanet/drguard/deploy"
	"github.com/fruitfulplanet/drguard/internal/app"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// examplePath is the configuration whose needs deploy/base must meet.
var examplePath = "../../deploy/examples/drguard.yaml"

// The namespace and ServiceAccount of deploy/base.
const (
	baseNamespace = "fruitfulplanet"
	baseSA        = "drguard"
)

// perm is one Kubernetes permission: a verb on a resource (and
// subresource), optionally on one named object.
type perm struct {
	Group, Resource, Subresource, Verb, Name string
}

func (p perm) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.Name != "" {
		r += " " + p.Name
	}
	return p.Verb + " " + r
}

// actionPerms are the API calls each kubernetes.* action makes (see
// remediate/action/kubernetes*.go); scale and rollout_restart take
// Deployments and StatefulSets alike.
var actionPerms = map[string][]perm{
	"kubernetes.delete_pod":      {{"", "pods", "", "get", ""}, {"", "pods", "", "delete", ""}},
	"kubernetes.pod_logs":        {{"", "pods", "log", "get", ""}},
	"kubernetes.scale":           {{"apps", "deployments", "scale", "get", ""}, {"apps", "deployments", "scale", "update", ""}, {"apps", "statefulsets", "scale", "get", ""}, {"apps", "statefulsets", "scale", "update", ""}},
	"kubernetes.rollout_restart": {{"apps", "deployments", "", "patch", ""}, {"apps", "statefulsets", "", "patch", ""}},
	"kubernetes.patch_secret":    {{"", "secrets", "", "patch", ""}}, // on the named Secret only
}

// exampleNeeds derives from deploy/examples/drguard.yaml the permissions
// its policies' Kubernetes actions and its kubernetes_workload probes need,
// each with the reason.
func exampleNeeds(t *testing.T) map[perm]string {
	t.Helper()
	cfg, err := config.Load(examplePath, app.KnownActions())
	if err != nil {
		t.Fatalf("load the example configuration: %v", err)
	}
	needs := map[perm]string{}
	for _, p := range cfg.Policies {
		for _, s := range p.Steps {
			where := fmt.Sprintf("policy %s step %s (%s)", p.Name, s.Name, s.Action)
			if ns, _ := s.Params["namespace"].(string); ns != "" && ns != baseNamespace {
				t.Errorf("%s acts in namespace %q; deploy/base grants %s only", where, ns, baseNamespace)
			}
			if s.Action == "exec" {
				if argv, _ := s.Params["argv"].([]any); len(argv) > 0 && fmt.Sprint(argv[0]) == "kubectl" {
					t.Errorf("%s runs kubectl as drguard's ServiceAccount: its permissions cannot be derived or kept least-privilege; use a kubernetes.* action", where)
				}
				continue
			}
			perms, ok := actionPerms[s.Action]
			if !ok {
				if strings.HasPrefix(s.Action, "kubernetes.") {
					t.Errorf("%s: unknown Kubernetes action; add its API calls to actionPerms", where)
				}
				continue
			}
			for _, pm := range perms {
				if pm.Resource == "secrets" {
					pm.Name, _ = s.Params["name"].(string)
					if pm.Name == "" || strings.Contains(pm.Name, "{{") {
						t.Errorf("%s patches Secret %q: a templated or missing name cannot be granted by name", where, pm.Name)
					}
				}
				needs[pm] = where
			}
		}
	}
	for _, p := range cfg.Probes {
		if p.Type != "kubernetes_workload" {
			continue
		}
		where := "probe " + p.Name
		kind, _ := p.Params["kind"].(string)
		needs[perm{"apps", strings.ToLower(kind) + "s", "", "get", ""}] = where
		needs[perm{"", "pods", "", "list", ""}] = where
	}
	return needs
}

// allowed asks the API server, as the client's identity, whether it may do
// p in namespace ns.
func allowed(t *testing.T, c kubernetes.Interface, ns string, p perm) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: p.Verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Name: p.Name,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectAccessReview %s in %q: %v", p, ns, err)
	}
	return r.Status.Allowed
}

// Resources and verbs probed for anything granted beyond the needs.
var (
	probeResources = []perm{
		{"", "pods", "", "", ""}, {"", "pods", "log", "", ""}, {"", "pods", "exec", "", ""}, {"", "pods", "eviction", "", ""},
		{"", "secrets", "", "", ""}, {"", "configmaps", "", "", ""}, {"", "services", "", "", ""},
		{"", "serviceaccounts", "", "", ""}, {"", "serviceaccounts", "token", "", ""}, {"", "persistentvolumeclaims", "", "", ""},
		{"apps", "deployments", "", "", ""}, {"apps", "deployments", "scale", "", ""}, {"apps", "statefulsets", "", "", ""},
		{"apps", "statefulsets", "scale", "", ""}, {"apps", "daemonsets", "", "", ""}, {"apps", "replicasets", "", "", ""},
		{"batch", "jobs", "", "", ""}, {"coordination.k8s.io", "leases", "", "", ""},
		{"rbac.authorization.k8s.io", "roles", "", "", ""}, {"rbac.authorization.k8s.io", "rolebindings", "", "", ""},
	}
	probeVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)

// TestKustomizeBaseOnKubeAPIServer applies the rendered deploy/base to a
// real kube-apiserver and checks, with SelfSubjectAccessReviews made as
// drguard's ServiceAccount, that it may do exactly what the example
// configuration's Kubernetes actions and probes need: nothing more in its
// namespace, nothing in another namespace, nothing cluster-wide.
func TestKustomizeBaseOnKubeAPIServer(t *testing.T) {
	k := testharness.KubeAPIServer(t)
	applyBase(t, k)
	needs := exampleNeeds(t)
	c, err := kubernetes.NewForConfig(k.ConfigFor(k.TokenFor(t, baseNamespace, baseSA)))
	if err != nil {
		t.Fatal(err)
	}
	other := k.NewNamespace(t)

	t.Run("needed", func(t *testing.T) {
		for p, why := range needs {
			if !allowed(t, c, baseNamespace, p) {
				t.Errorf("drguard may not %s in %s, which %s needs", p, baseNamespace, why)
			}
			if allowed(t, c, other, p) {
				t.Errorf("drguard may %s in namespace %s (only %s is its business)", p, other, baseNamespace)
			}
		}
	})
	t.Run("nothing more", func(t *testing.T) {
		for _, r := range probeResources {
			for _, v := range probeVerbs {
				p := r
				p.Verb = v
				_, need := needs[p]
				switch got := allowed(t, c, baseNamespace, p); {
				case got && !need:
					t.Errorf("drguard may %s in %s, which no example policy or probe needs: drop it from deploy/base or use it in deploy/examples/drguard.yaml", p, baseNamespace)
				case !got && need:
					t.Errorf("drguard may not %s in %s, which %s needs", p, baseNamespace, needs[p])
				}
			}
		}
		for p := range needs {
			if p.Name != "" {
				q := p
				q.Name = "not-" + p.Name
				if allowed(t, c, baseNamespace, q) {
					t.Errorf("drguard may %s: only %s is needed", q, p.Name)
				}
			}
		}
	})
	t.Run("forbidden", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ns   string
			p    perm
		}{
			{"delete secrets", baseNamespace, perm{"", "secrets", "", "delete", ""}},
			{"delete the app's secret", baseNamespace, perm{"", "secrets", "", "delete", "app-secrets"}},
			{"read secrets", baseNamespace, perm{"", "secrets", "", "get", ""}},
			{"exec into pods", baseNamespace, perm{"", "pods", "exec", "create", ""}},
			{"grant itself more", baseNamespace, perm{"rbac.authorization.k8s.io", "rolebindings", "", "create", ""}},
			{"delete pods elsewhere", other, perm{"", "pods", "", "delete", ""}},
			{"scale elsewhere", other, perm{"apps", "deployments", "scale", "update", ""}},
			{"list namespaces", "", perm{"", "namespaces", "", "list", ""}},
			{"delete its namespace", "", perm{"", "namespaces", "", "delete", baseNamespace}},
			{"list nodes", "", perm{"", "nodes", "", "list", ""}},
		} {
			if allowed(t, c, tc.ns, tc.p) {
				t.Errorf("%s: drguard may %s in %q", tc.name, tc.p, tc.ns)
			}
		}
	})
	t.Run("HA overlay", func(t *testing.T) {
		// The overlay applies over the base: two replicas, their
		// PodDisruptionBudget, the same ServiceAccount and Roles.
		objs := apply(t, k, deploy.HAOverlayPath)
		kinds := map[string]bool{}
		for _, o := range objs {
			kinds[o.GetKind()] = true
			if o.GetKind() == "PersistentVolumeClaim" {
				t.Errorf("the HA overlay has PersistentVolumeClaim %s", o.GetName())
			}
		}
		if !kinds["PodDisruptionBudget"] || !kinds["Deployment"] {
			t.Errorf("the HA overlay applied %v, want a Deployment and a PodDisruptionBudget", kinds)
		}
		admin, err := kubernetes.NewForConfig(k.AdminConfig())
		if err != nil {
			t.Fatal(err)
		}
		d, err := admin.AppsV1().Deployments(baseNamespace).Get(context.Background(), "drguard", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Affinity == nil {
			t.Errorf("the applied Deployment has %v replicas, affinity %v; want 2 spread over nodes", d.Spec.Replicas, d.Spec.Template.Spec.Affinity)
		}
	})
	var list []string
	for p, why := range needs {
		list = append(list, fmt.Sprintf("%s (%s)", p, why))
	}
	slices.Sort(list)
	t.Logf("the example needs:\n  %s", strings.Join(list, "\n  "))
}

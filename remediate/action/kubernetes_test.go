package action

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// kubeEnv is a fresh namespace on the shared kube-apiserver with the Role
// of deploy/base/role.yaml applied, a kubeconfig that authenticates as its
// ServiceAccount drguard, and a configuration naming it as target "k8s".
type kubeEnv struct {
	kube   *testharness.Kube
	ns     string
	admin  kubernetes.Interface
	asSA   kubernetes.Interface
	cfg    *config.Config
	config string // kubeconfig path
}

func newKubeEnv(t *testing.T) *kubeEnv {
	t.Helper()
	k := testharness.KubeAPIServer(t)
	e := &kubeEnv{kube: k, ns: k.NewNamespace(t), admin: k.AdminClient(t)}
	applyRoleYAML(t, e.admin, e.ns, filepath.Join("..", "..", "deploy", "base", "role.yaml"))
	token := k.TokenFor(t, e.ns, "drguard")
	e.config = writeKubeconfig(t, k, token)
	var err error
	if e.asSA, err = kubernetes.NewForConfig(k.ConfigFor(token)); err != nil {
		t.Fatal(err)
	}
	e.cfg = &config.Config{Targets: config.Targets{Kubernetes: []config.KubernetesTarget{
		{Name: "k8s", Service: "fruitfulplanet", Kubeconfig: e.config, Context: "drguard", Namespace: e.ns},
	}}}
	return e
}

// writeKubeconfig writes a kubeconfig whose context "drguard" uses token;
// its current context, "other", has no credentials, so a step reaches the
// cluster only by honouring the target's context.
func writeKubeconfig(t *testing.T, k *testharness.Kube, token string) string {
	t.Helper()
	return testharness.WriteKubeconfig(t, "other", map[string]testharness.KubeContext{
		"drguard": {Kube: k, Token: token}, "other": {Kube: k, Token: "no-such-token"}})
}

// applyRoleYAML creates the objects of a multi-document RBAC manifest in
// namespace ns, in place of the namespace it names.
func applyRoleYAML(t *testing.T, c kubernetes.Interface, ns, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var meta metav1.TypeMeta
		must(t, yaml.Unmarshal([]byte(doc), &meta))
		switch meta.Kind {
		case "ServiceAccount":
			var o corev1.ServiceAccount
			must(t, yaml.UnmarshalStrict([]byte(doc), &o))
			o.Namespace = ns
			must(t, create(ctx, c.CoreV1().ServiceAccounts(ns), &o))
		case "Role":
			var o rbacv1.Role
			must(t, yaml.UnmarshalStrict([]byte(doc), &o))
			o.Namespace = ns
			must(t, create(ctx, c.RbacV1().Roles(ns), &o))
		case "RoleBinding":
			var o rbacv1.RoleBinding
			must(t, yaml.UnmarshalStrict([]byte(doc), &o))
			o.Namespace = ns
			for i := range o.Subjects {
				o.Subjects[i].Namespace = ns
			}
			must(t, create(ctx, c.RbacV1().RoleBindings(ns), &o))
		default:
			t.Fatalf("%s: unexpected kind %q", path, meta.Kind)
		}
	}
}

func (e *kubeEnv) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// seed creates, as admin, the objects the plan's scenarios act on.
func (e *kubeEnv) seed(t *testing.T) {
	t.Helper()
	e.kube.SeedPlan(t, e.ns)
}

type creator[T any] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
}

func create[T any](ctx context.Context, c creator[T], obj T) error {
	_, err := c.Create(ctx, obj, metav1.CreateOptions{})
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// run builds the named action over e's configuration and runs it.
func (e *kubeEnv) run(t *testing.T, name string, params map[string]any, previous map[string]map[string]any) (Outcome, error) {
	t.Helper()
	a, err := Registry[name].New(Deps{Config: e.cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(params); err != nil {
		t.Fatalf("%s: Validate: %v", name, err)
	}
	return a.Run(e.ctx(t), Request{RunID: "run-1", Step: name, Policy: "p", Target: "postgres-primary",
		Params: jsonRound(t, params), Previous: previous})
}

// jsonRound gives v the types the engine's journal gives params and results.
func jsonRound(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	must(t, json.Unmarshal(raw, &out))
	return out
}

func TestKubernetesActionsAsServiceAccount(t *testing.T) {
	e := newKubeEnv(t)
	e.seed(t)
	ctx := e.ctx(t)

	t.Run("delete_pod", func(t *testing.T) {
		out, err := e.run(t, "kubernetes.delete_pod", map[string]any{"name": "postgres-0"}, nil)
		if err != nil {
			t.Fatalf("delete_pod: %v", err)
		}
		if out.Result["deleted"] != true || out.Result["uid"] == "" {
			t.Errorf("result = %v", out.Result)
		}
		if _, err := e.admin.CoreV1().Pods(e.ns).Get(ctx, "postgres-0", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod still there: %v", err)
		}
		out, err = e.run(t, "kubernetes.delete_pod", map[string]any{"name": "postgres-0"}, nil)
		if err != nil || out.Result["deleted"] != false || !strings.Contains(out.Output, "already gone") {
			t.Errorf("second delete = %v, %v, %q; want idempotent success", err, out.Result, out.Output)
		}
	})

	t.Run("scale and previous", func(t *testing.T) {
		down, err := e.run(t, "kubernetes.scale", map[string]any{"name": "fruitfulplanet-app", "replicas": 0}, nil)
		if err != nil {
			t.Fatalf("scale to 0: %v", err)
		}
		if got := deploymentReplicas(t, e, "fruitfulplanet-app"); got != 0 {
			t.Fatalf("replicas after scale = %d, want 0", got)
		}
		prev := map[string]map[string]any{"stop-writes": jsonRound(t, down.Result)}
		up, err := e.run(t, "kubernetes.scale", map[string]any{"name": "fruitfulplanet-app", "replicas": "previous"}, prev)
		if err != nil {
			t.Fatalf("scale to previous: %v", err)
		}
		if got := deploymentReplicas(t, e, "fruitfulplanet-app"); got != 3 {
			t.Errorf("replicas after previous = %d, want 3", got)
		}
		if up.Result["resolved_from"] != "stop-writes" || up.Result["previous_replicas"] != 0 {
			t.Errorf("result = %v", up.Result)
		}
		if _, err := e.run(t, "kubernetes.scale", map[string]any{"kind": "StatefulSet", "name": "postgres", "replicas": 2}, nil); err != nil {
			t.Fatalf("scale statefulset: %v", err)
		}
		ss, err := e.admin.AppsV1().StatefulSets(e.ns).Get(ctx, "postgres", metav1.GetOptions{})
		must(t, err)
		if *ss.Spec.Replicas != 2 {
			t.Errorf("statefulset replicas = %d, want 2", *ss.Spec.Replicas)
		}
	})

	t.Run("rollout_restart", func(t *testing.T) {
		out, err := e.run(t, "kubernetes.rollout_restart", map[string]any{"name": "fruitfulplanet-app"}, nil)
		if err != nil {
			t.Fatalf("rollout_restart: %v", err)
		}
		d, err := e.admin.AppsV1().Deployments(e.ns).Get(ctx, "fruitfulplanet-app", metav1.GetOptions{})
		must(t, err)
		got := d.Spec.Template.Annotations[RestartedAtAnnotation]
		if got == "" || got != out.Result["restarted_at"] {
			t.Errorf("pod template annotation = %q, result %v", got, out.Result)
		}
	})

	t.Run("patch_secret", func(t *testing.T) {
		// The value file is named relative to the configuration file.
		dir := t.TempDir()
		e.cfg.File = filepath.Join(dir, "drguard.yaml")
		defer func() { e.cfg.File = "" }()
		must(t, os.Mkdir(filepath.Join(dir, "restored"), 0o700))
		const secret = "postgres://app:s3cr3t-pw@restored.example:5432/app"
		must(t, os.WriteFile(filepath.Join(dir, "restored", "database_url"), []byte(secret+"\n"), 0o600))
		out, err := e.run(t, "kubernetes.patch_secret", map[string]any{
			"name": "app-secrets", "value_files": map[string]any{"DATABASE_URL": "restored/database_url"},
			"values": map[string]any{"DATABASE_HOST": "restored.example"},
		}, nil)
		if err != nil {
			t.Fatalf("patch_secret: %v", err)
		}
		s, err := e.admin.CoreV1().Secrets(e.ns).Get(ctx, "app-secrets", metav1.GetOptions{})
		must(t, err)
		if string(s.Data["DATABASE_URL"]) != secret || string(s.Data["DATABASE_HOST"]) != "restored.example" || string(s.Data["KEEP"]) != "kept" {
			t.Errorf("secret data = %q", s.Data)
		}
		shown := fmt.Sprint(out.Output, out.Result)
		if strings.Contains(shown, "s3cr3t") {
			t.Errorf("secret value leaked into the outcome: %s", shown)
		}
		if fmt.Sprint(out.Result["keys"]) != "[DATABASE_HOST DATABASE_URL]" {
			t.Errorf("keys = %v", out.Result["keys"])
		}
	})

	t.Run("pod_logs", func(t *testing.T) {
		// Without a node a pod has no log; the API answers with an empty
		// one, which the journal shows as such.
		out, err := e.run(t, "kubernetes.pod_logs", map[string]any{"name": "web-0", "tail_lines": 10}, nil)
		if err != nil || !strings.Contains(out.Output, "no log output") || out.Result["bytes"] != int64(0) {
			t.Errorf("pod_logs = %q, %v, %v", out.Output, out.Result, err)
		}
		_, err = e.run(t, "kubernetes.pod_logs", map[string]any{"name": "nope"}, nil)
		if err == nil || !strings.Contains(err.Error(), `kubernetes: pod "nope" in namespace `+e.ns+" not found") {
			t.Errorf("pod_logs of a missing pod = %v", err)
		}
	})

	t.Run("outside the Role", func(t *testing.T) {
		_, err := e.run(t, "kubernetes.patch_secret", map[string]any{"name": "other-secret", "values": map[string]any{"X": "y"}}, nil)
		want := "kubernetes: forbidden: serviceaccount drguard cannot patch secrets in namespace " + e.ns
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("patch other-secret = %v, want %q", err, want)
		}
		_, err = e.run(t, "kubernetes.rollout_restart", map[string]any{"kind": "daemonset", "name": "node-agent"}, nil)
		want = "kubernetes: forbidden: serviceaccount drguard cannot patch daemonsets in namespace " + e.ns
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("restart daemonset = %v, want %q", err, want)
		}
		_, err = e.run(t, "kubernetes.scale", map[string]any{"name": "fruitfulplanet-app", "replicas": 1, "namespace": "default"}, nil)
		want = "kubernetes: forbidden: serviceaccount drguard cannot get deployments/scale in namespace default"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("scale in another namespace = %v, want %q", err, want)
		}
		if _, err := e.asSA.CoreV1().Secrets(e.ns).Get(ctx, "app-secrets", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("the ServiceAccount may read a Secret: %v", err)
		}
		// Deleting a Secret is nothing drguard's actions do; the Role
		// refuses it, and the refusal reads the same way.
		err = e.asSA.CoreV1().Secrets(e.ns).Delete(ctx, "app-secrets", metav1.DeleteOptions{})
		err = kubeError(ctx, err, kubeObject{"delete", "secrets", "app-secrets", e.ns})
		want = "kubernetes: forbidden: serviceaccount drguard cannot delete secrets in namespace " + e.ns
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("delete secret = %v, want %q", err, want)
		}
	})
}

func deploymentReplicas(t *testing.T, e *kubeEnv, name string) int32 {
	t.Helper()
	d, err := e.admin.AppsV1().Deployments(e.ns).Get(e.ctx(t), name, metav1.GetOptions{})
	must(t, err)
	return *d.Spec.Replicas
}

func TestKubernetesTargetSelection(t *testing.T) {
	cfg := &config.Config{Targets: config.Targets{Kubernetes: []config.KubernetesTarget{{Name: "a"}, {Name: "b"}}}}
	s := &Scale{newKubeBase(Deps{Config: cfg}.withDefaults())}
	_, err := s.resolve(Request{Target: "db"}, kubeCommon{})
	if err == nil || !strings.Contains(err.Error(), `several kubernetes targets are configured (a, b): set param "target"`) {
		t.Errorf("ambiguous target: %v", err)
	}
	_, err = s.resolve(Request{}, kubeCommon{Target: "c"})
	if err == nil || !strings.Contains(err.Error(), `no kubernetes target named "c"`) {
		t.Errorf("unknown target: %v", err)
	}
}

func TestKubernetesValidate(t *testing.T) {
	tests := []struct {
		action string
		params map[string]any
		want   string
	}{
		{"kubernetes.scale", map[string]any{"name": "app", "replicas": "previous", "from_step": "stop"}, ""},
		{"kubernetes.scale", map[string]any{"name": "app", "replicas": "{{ .Labels.n }}"}, ""},
		{"kubernetes.scale", map[string]any{"name": "app"}, `param "replicas": is required`},
		{"kubernetes.scale", map[string]any{"name": "app", "replicas": -1}, "must not be negative"},
		{"kubernetes.scale", map[string]any{"name": "app", "replicas": "many"}, `want a number or "previous"`},
		{"kubernetes.scale", map[string]any{"name": "app", "replicas": 2, "from_step": "x"}, "only to replicas: previous"},
		{"kubernetes.scale", map[string]any{"name": "app", "replicas": 1, "kind": "daemonset"}, `"daemonset" is not one of`},
		{"kubernetes.delete_pod", map[string]any{"name": "Postgres_0"}, "not a valid Kubernetes object name"},
		{"kubernetes.delete_pod", map[string]any{"name": "{{ .Labels.pod }}", "namespace": "Bad.NS"}, "not a valid namespace"},
		{"kubernetes.delete_pod", map[string]any{"name": "p", "force": true}, `param "force": unknown key`},
		{"kubernetes.patch_secret", map[string]any{"name": "s"}, "set at least one key"},
		{"kubernetes.patch_secret", map[string]any{"name": "s", "values": map[string]any{"a b": "x"}}, "not a valid Secret key"},
		{"kubernetes.pod_logs", map[string]any{"name": "p", "tail_lines": 0}, "must be positive"},
		{"kubernetes.rollout_restart", map[string]any{"name": "ds", "kind": "DaemonSet"}, ""},
	}
	for _, tc := range tests {
		a, err := Registry[tc.action].New(Deps{})
		must(t, err)
		err = a.Validate(tc.params)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %v: Validate = %v, want %q", tc.action, tc.params, err, tc.want)
		}
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fruitfulplanet/drguard/internal/app"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/remediate/drill"
)

// exampleDrills are the drills of deploy/examples/drguard.yaml.
var exampleDrills = []string{"q1-database-restore", "q2-region-failover", "q3-data-corruption", "q4-full-disaster", "security-breach"}

// TestDrillPreflightOnKustomizeBase preflights every drill of the example
// plan, as drguard's ServiceAccount of deploy/base applied to a real
// kube-apiserver, with the plan's objects in its namespace: every
// Kubernetes check (credentials, access reviews, existence) passes. With
// the Role's deployments/scale rule removed, the drills that scale fail,
// naming the verb and the resource, and exit 1. Nothing changes.
func TestDrillPreflightOnKustomizeBase(t *testing.T) {
	k := testharness.KubeAPIServer(t)
	applyBase(t, k)
	k.SeedPlan(t, baseNamespace)
	token := k.TokenFor(t, baseNamespace, baseSA)
	kc := testharness.WriteKubeconfig(t, "drguard", map[string]testharness.KubeContext{"drguard": {Kube: k, Token: token}, "dr": {Kube: k, Token: token}})
	path := exampleWithKubeconfig(t, kc)
	// No AWS credentials and no instance metadata: the AWS checks fail
	// at once instead of reaching for AWS.
	for key, v := range map[string]string{"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
		"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"} {
		t.Setenv(key, v)
	}

	kubeRows := 0
	for _, name := range exampleDrills {
		_, rows := preflightExample(t, path, name)
		for _, r := range kubernetesRows(rows) {
			kubeRows++
			if r.Verdict != "pass" {
				t.Errorf("%s: %s %s %s: %s: %s", name, r.Step, r.Target, r.Check, r.Verdict, r.Reason)
			}
		}
	}
	if kubeRows < 20 {
		t.Fatalf("only %d Kubernetes checks across the example's drills", kubeRows)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	roles := k.AdminClient(t).RbacV1().Roles(baseNamespace)
	role, err := roles.Get(ctx, "drguard-actions", metav1.GetOptions{})
	must(t, err)
	original := role.DeepCopy()
	t.Cleanup(func() {
		cur, err := roles.Get(context.Background(), "drguard-actions", metav1.GetOptions{})
		if err == nil {
			cur.Rules = original.Rules
			_, err = roles.Update(context.Background(), cur, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("restore the Role: %v", err)
		}
	})
	role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "deployments/scale") })
	_, err = roles.Update(ctx, role, metav1.UpdateOptions{})
	must(t, err)

	code, rows := preflightExample(t, path, "q3-data-corruption")
	if code != app.ExitFail {
		t.Errorf("preflight exited %d without the scale rule, want 1", code)
	}
	var refused []string
	for _, r := range kubernetesRows(rows) {
		if r.Verdict == "fail" {
			refused = append(refused, r.Step+": "+r.Reason)
		}
	}
	text := strings.Join(refused, "\n")
	for _, want := range []string{`data-corruption/stop-writes: system:serviceaccount:fruitfulplanet:drguard may not update deployments/scale "fruitfulplanet-app" in namespace fruitfulplanet: the Role must grant verb "update" on "deployments/scale"`,
		`may not get deployments/scale "fruitfulplanet-app"`, "data-corruption/resume"} {
		if !strings.Contains(text, want) {
			t.Errorf("want %q among the failures:\n%s", want, text)
		}
	}
	sc, err := k.AdminClient(t).AppsV1().Deployments(baseNamespace).GetScale(ctx, "fruitfulplanet-app", metav1.GetOptions{})
	must(t, err)
	if sc.Spec.Replicas != 3 {
		t.Errorf("the preflights changed the deployment: %d replicas", sc.Spec.Replicas)
	}
}

// exampleWithKubeconfig copies deploy/examples/drguard.yaml (and its
// secrets) to a temporary directory with both kubernetes targets reaching
// the test's cluster through kubeconfig kc, and returns the copy's path.
func exampleWithKubeconfig(t *testing.T, kc string) string {
	t.Helper()
	raw, err := os.ReadFile(examplePath)
	must(t, err)
	text := string(raw)
	for old, repl := range map[string]string{
		"      namespace: fruitfulplanet # kubeconfig empty: in-cluster": "      kubeconfig: " + kc + "\n      namespace: fruitfulplanet",
		"kubeconfig: /etc/drguard/kubeconfig":                            "kubeconfig: " + kc,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("the example no longer has %q", old)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	dir := t.TempDir()
	secrets, err := filepath.Abs(filepath.Join(filepath.Dir(examplePath), "secrets"))
	must(t, err)
	must(t, os.Symlink(secrets, filepath.Join(dir, "secrets")))
	path := filepath.Join(dir, "drguard.yaml")
	must(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// preflightExample runs `drguard drill --format=json` for one drill and
// returns its exit code and rows.
func preflightExample(t *testing.T, path, name string) (int, []drill.Row) {
	t.Helper()
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := app.Main(ctx, []string{"drill", "--config.file=" + path, "--drill=" + name, "--format=json"}, app.IO{Stdout: &out, Stderr: &errOut})
	var res struct {
		Failed bool        `json:"failed"`
		Checks []drill.Row `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("drill %s preflight: exit %d, %v:\n%s%s", name, code, err, out.String(), errOut.String())
	}
	return code, res.Checks
}

// kubernetesRows are the rows of kubernetes.* steps that ask the API
// server: credentials, access reviews, existence.
func kubernetesRows(rows []drill.Row) []drill.Row {
	var out []drill.Row
	for _, r := range rows {
		if strings.HasPrefix(r.Action, "kubernetes.") && (r.Check == "credentials" || r.Check == "rbac" || r.Check == "exists" || r.Check == "target") {
			out = append(out, r)
		}
	}
	return out
}

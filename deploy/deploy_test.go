package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/fruitfulplanet/drguard/internal/app"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/rules"
)

// TestGeneratedFilesUpToDate fails while deploy/base holds generated files
// that differ from their sources: run `go run ./deploy/gen`.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Generate("..")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join("..", path))
		if err != nil {
			t.Errorf("%s: %v (run go run ./deploy/gen)", path, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go run ./deploy/gen", path)
		}
	}
}

// object is one rendered manifest.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	raw []byte
}

// rendered renders the base and splits it into objects by kind/name.
func rendered(t *testing.T) map[string]object { return renderedPath(t, BasePath) }

// renderedPath renders a kustomization and splits it into objects.
func renderedPath(t *testing.T, path string) map[string]object {
	t.Helper()
	out, err := RenderPath("..", path)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", path, err)
	}
	objs := map[string]object{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		raw, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := sigsyaml.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		o.raw = raw
		objs[o.Kind+"/"+o.Metadata.Name] = o
	}
	return objs
}

// find returns the only object of a kind whose name starts with prefix
// (generated ConfigMaps get a hash suffix).
func find(t *testing.T, objs map[string]object, kind, prefix string) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if o.Kind == kind && strings.HasPrefix(o.Metadata.Name, prefix) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s objects named %s*, want 1", len(found), kind, prefix)
	}
	return found[0]
}

func TestRenderedBase(t *testing.T) {
	objs := rendered(t)
	for _, want := range []struct{ kind, name string }{
		{"Namespace", "fruitfulplanet"}, {"ServiceAccount", "drguard"},
		{"Role", "drguard-actions"}, {"RoleBinding", "drguard-actions"}, {"Role", "drguard-probes"}, {"RoleBinding", "drguard-probes"},
		{"Deployment", "drguard"}, {"Service", "drguard"}, {"ServiceMonitor", "drguard"},
		{"PrometheusRule", "drguard"}, {"ConfigMap", "drguard-config"}, {"PersistentVolumeClaim", "drguard-data"},
		{"NetworkPolicy", "drguard"},
	} {
		find(t, objs, want.kind, want.name)
	}
	for key, o := range objs {
		if o.Kind != "Namespace" && o.Metadata.Namespace != "fruitfulplanet" {
			t.Errorf("%s is in namespace %q, want fruitfulplanet", key, o.Metadata.Namespace)
		}
	}

	var d appsv1.Deployment
	if err := sigsyaml.Unmarshal(find(t, objs, "Deployment", "drguard").raw, &d); err != nil {
		t.Fatal(err)
	}
	checkDeployment(t, &d, find(t, objs, "ConfigMap", "drguard-config").Metadata.Name)

	var cm corev1.ConfigMap
	if err := sigsyaml.Unmarshal(find(t, objs, "ConfigMap", "drguard-config").raw, &cm); err != nil {
		t.Fatal(err)
	}
	checkWebConfig(t, &d, cm)
	// The ConfigMap's configuration loads, with the example secrets standing
	// in for the mounted Secret.
	path := filepath.Join("..", ExampleConfigPath)
	if _, err := config.Parse([]byte(cm.Data["drguard.yaml"]), path, app.KnownActions()); err != nil {
		t.Errorf("the ConfigMap's drguard.yaml does not load: %v", err)
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, configMap string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if spec.ServiceAccountName != "drguard" {
		t.Errorf("serviceAccountName %q", spec.ServiceAccountName)
	}
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("the pod does not run as a non-root user")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("root filesystem is not read-only")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("privilege escalation is allowed")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("no liveness probe on /healthz")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("no readiness probe on /readyz")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("no cpu and memory requests")
	}
	if !strings.Contains(c.Image, "drguard") || strings.HasPrefix(c.Image, "drguard") {
		t.Errorf("image %q: the images transformer did not apply", c.Image)
	}
	// Every path drguard writes is a volume; the configuration is the
	// generated ConfigMap and the secrets sit beside it.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	flag := func(name string) string {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v
			}
		}
		return ""
	}
	storage := flag("storage.path")
	if v := volumes[mounts[storage]]; storage == "" || v.PersistentVolumeClaim == nil {
		t.Errorf("--storage.path=%q is not on a persistent volume", storage)
	}
	cfgFile := flag("config.file")
	if v := volumes[mounts[cfgFile]]; v.ConfigMap == nil || v.ConfigMap.Name != configMap {
		t.Errorf("--config.file=%q is not the ConfigMap %s", cfgFile, configMap)
	}
	if v := volumes[mounts[filepath.Join(filepath.Dir(cfgFile), "secrets")]]; v.Secret == nil || v.Secret.SecretName != "drguard-secrets" {
		t.Error("the Secret drguard-secrets is not mounted at secrets/ beside the configuration")
	}
	if v := volumes[mounts["/tmp"]]; v.EmptyDir == nil {
		t.Error("no writable /tmp")
	}
	checkExamplePaths(t, c.VolumeMounts)
}

// checkWebConfig checks that drguard serves HTTPS: --web.config.file is the
// ConfigMap's web-config.yml, whose certificate and key come from the
// mounted Secret drguard-tls, and the kubelet probes speak HTTPS.
func checkWebConfig(t *testing.T, d *appsv1.Deployment, cm corev1.ConfigMap) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--web.config.file=/etc/drguard/web-config.yml") {
		t.Fatalf("drguard is not started with --web.config.file=/etc/drguard/web-config.yml: %v", c.Args)
	}
	var web struct {
		TLS struct {
			CertFile string `yaml:"cert_file"`
			KeyFile  string `yaml:"key_file"`
		} `yaml:"tls_server_config"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["web-config.yml"]), &web); err != nil {
		t.Fatalf("web-config.yml: %v", err)
	}
	tlsDir := ""
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "drguard-tls" {
				tlsDir = m.MountPath
			}
		}
		if m.MountPath == "/etc/drguard/web-config.yml" && m.SubPath != "web-config.yml" {
			t.Errorf("/etc/drguard/web-config.yml is not the ConfigMap's web-config.yml")
		}
	}
	if tlsDir == "" || web.TLS.CertFile != tlsDir+"/tls.crt" || web.TLS.KeyFile != tlsDir+"/tls.key" {
		t.Errorf("web-config.yml serves %s and %s, not the Secret drguard-tls mounted at %q", web.TLS.CertFile, web.TLS.KeyFile, tlsDir)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("the %s probe does not use HTTPS", name)
		}
	}
}

// examplePath matches the absolute paths under /etc/drguard and
// /var/lib/drguard that the example configuration names.
var examplePath = regexp.MustCompile(`/(?:etc/drguard|var/lib/drguard)(?:/[A-Za-z0-9_.-]+)*`)

// checkExamplePaths fails for every such path that no volume mount holds:
// in the pod it would not exist (the root filesystem is read-only).
func checkExamplePaths(t *testing.T, mounts []corev1.VolumeMount) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", ExampleConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range examplePath.FindAllString(string(raw), -1) {
		held := false
		for _, m := range mounts {
			if p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") {
				held = true
			}
		}
		if !held && p != "/etc/drguard" {
			t.Errorf("the example configuration uses %s, which no volume of the Deployment holds", p)
		}
	}
}

// TestPrometheusRuleLoads checks that the groups inside the committed
// PrometheusRule are a rule file Prometheus accepts (promtool check rules)
// and hold as many rules as rules/ does.
func TestPrometheusRuleLoads(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testharness.Need(t, "promtool (apt-get install prometheus)", err)
	}
	raw, err := os.ReadFile(filepath.Join("..", PrometheusRulePath))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Spec struct {
			Groups []map[string]any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	groups, err := rules.Groups()
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Spec.Groups) != len(groups) {
		t.Fatalf("PrometheusRule has %d groups, rules/ %d", len(pr.Spec.Groups), len(groups))
	}
	out, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "prometheusrule.rules.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the PrometheusRule's groups: %v\n%s", err, msg)
	}
}

package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/fruitfulplanet/drguard/internal/app"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// TestRenderedHAOverlay checks deploy/overlays/ha: two replicas that never
// share a node and prefer two zones, rolled one at a time, a
// PodDisruptionBudget that keeps one, no volume for a journal, and a
// configuration on the PostgreSQL journal (the example's otherwise) whose
// DSN comes from the Secret.
func TestRenderedHAOverlay(t *testing.T) {
	objs := renderedPath(t, HAOverlayPath)
	for key := range objs {
		if strings.HasPrefix(key, "PersistentVolumeClaim/") {
			t.Errorf("%s: the HA overlay keeps the journal in PostgreSQL, not on a volume", key)
		}
	}
	var d appsv1.Deployment
	if err := sigsyaml.Unmarshal(find(t, objs, "Deployment", "drguard").raw, &d); err != nil {
		t.Fatal(err)
	}
	cm := find(t, objs, "ConfigMap", "drguard-config")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	if s := d.Spec.Strategy; s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v, want a rolling update that keeps every replica until its successor is ready", s)
	}
	spec := d.Spec.Template.Spec
	aa := spec.Affinity
	if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 ||
		aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey != corev1.LabelHostname ||
		len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != corev1.LabelTopologyZone {
		t.Errorf("affinity %+v, want replicas on different nodes, preferably zones", aa)
	}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			t.Errorf("volume %s claims %s", v.Name, v.PersistentVolumeClaim.ClaimName)
		}
		if v.Name == "data" && v.EmptyDir == nil {
			t.Errorf("volume data (scratch space for restores at /var/lib/drguard) is %+v, want an emptyDir", v.VolumeSource)
		}
	}
	if slices.ContainsFunc(spec.Containers[0].Args, func(a string) bool { return strings.HasPrefix(a, "--storage.path") }) {
		t.Errorf("args %v: no --storage.path with the PostgreSQL journal", spec.Containers[0].Args)
	}
	var pdb policyv1.PodDisruptionBudget
	if err := sigsyaml.Unmarshal(find(t, objs, "PodDisruptionBudget", "drguard").raw, &pdb); err != nil {
		t.Fatal(err)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "drguard" {
		t.Errorf("PodDisruptionBudget %+v, want minAvailable 1 of drguard's pods", pdb.Spec)
	}

	var m corev1.ConfigMap
	if err := sigsyaml.Unmarshal(cm.raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Data["web-config.yml"] == "" {
		t.Error("the overlay's ConfigMap lost the base's web-config.yml")
	}
	// Load it beside the example's placeholder secrets, as the pod
	// reads it beside the Secret.
	cfg, err := config.Parse([]byte(m.Data["drguard.yaml"]), filepath.Join("..", ExampleConfigPath), app.KnownActions())
	if err != nil {
		t.Fatalf("the HA configuration does not load: %v", err)
	}
	if cfg.Storage.Type != config.StoragePostgres || !strings.HasSuffix(cfg.Storage.DSNFile, "/secrets/journal.dsn") || cfg.Storage.DSN == "" {
		t.Errorf("storage %+v, want the postgres journal with dsn_file secrets/journal.dsn", cfg.Storage)
	}
	if len(cfg.Watchdogs) == 0 || len(cfg.Policies) == 0 {
		t.Error("the HA configuration lost the example's watchdogs or policies")
	}
}

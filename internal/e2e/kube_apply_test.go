package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/fruitfulplanet/drguard/deploy"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// render renders a kustomization (deploy/base, an overlay) with
// kustomize's Go API, as `kubectl kustomize` would, and decodes its
// objects.
func render(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	out, err := deploy.RenderPath("../..", path)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", path, err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode rendered base: %v", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

// monitoringCRDs are minimal CustomResourceDefinitions for the Prometheus
// Operator kinds the base uses: enough for the API server to store them.
var monitoringCRDs = []struct{ kind, plural string }{
	{"ServiceMonitor", "servicemonitors"}, {"PrometheusRule", "prometheusrules"},
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installMonitoringCRDs creates the CRDs and waits until they are served.
func installMonitoringCRDs(t *testing.T, ctx context.Context, dyn dynamic.Interface) {
	t.Helper()
	for _, c := range monitoringCRDs {
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": c.plural + ".monitoring.coreos.com"},
			"spec": map[string]any{
				"group": "monitoring.coreos.com", "scope": "Namespaced",
				"names": map[string]any{"kind": c.kind, "plural": c.plural, "listKind": c.kind + "List"},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{
						"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
			},
		}}
		if _, err := dyn.Resource(crdGVR).Apply(ctx, crd.GetName(), crd, metav1.ApplyOptions{FieldManager: "drguard-e2e", Force: true}); err != nil {
			t.Fatalf("install CRD %s: %v", crd.GetName(), err)
		}
	}
	for _, c := range monitoringCRDs {
		name := c.plural + ".monitoring.coreos.com"
		testharness.Eventually(t, 30*time.Second, "CRD "+name+" to be established", func() bool {
			got, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true
				}
			}
			return false
		})
	}
}

// applyBase renders deploy/base and server-side applies every object to
// the test binary's kube-apiserver as cluster admin, then reads each back.
func applyBase(t *testing.T, k *testharness.Kube) []*unstructured.Unstructured {
	return apply(t, k, deploy.BasePath)
}

// apply renders the kustomization at path and applies it as applyBase
// does.
func apply(t *testing.T, k *testharness.Kube, path string) []*unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := k.AdminConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	installMonitoringCRDs(t, ctx, dyn)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	objs := render(t, path)
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: no such kind on the API server: %v", gvk, o.GetName(), err)
		}
		ri := dyn.Resource(mapping.Resource)
		var r dynamic.ResourceInterface = ri
		if mapping.Scope.Name() == "namespace" {
			r = ri.Namespace(o.GetNamespace())
		}
		if _, err := r.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "drguard-e2e", Force: true}); err != nil {
			t.Fatalf("apply %s %s/%s: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
		if _, err := r.Get(ctx, o.GetName(), metav1.GetOptions{}); err != nil {
			t.Fatalf("read back %s %s/%s: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
		t.Logf("applied %s %s/%s", gvk.Kind, o.GetNamespace(), o.GetName())
	}
	return objs
}

package action

import (
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// KubeFixture exposes the Kubernetes test environment to the external
// tests that drive actions through the real engine.
type KubeFixture struct {
	// Config names the namespace as kubernetes target "k8s", reached as
	// the ServiceAccount drguard bound to deploy/base/role.yaml.
	Config    *config.Config
	Namespace string
	Admin     kubernetes.Interface
}

// NewKubeFixture starts (or reuses) the kube-apiserver, applies the Role
// into a fresh namespace and seeds the plan's objects: Deployment
// fruitfulplanet-app (3 replicas), StatefulSet postgres, pods postgres-0
// and web-0, Secrets app-secrets and other-secret.
func NewKubeFixture(t *testing.T) KubeFixture {
	t.Helper()
	e := newKubeEnv(t)
	e.seed(t)
	return KubeFixture{Config: e.cfg, Namespace: e.ns, Admin: e.admin}
}

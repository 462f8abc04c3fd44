// Package kubeclient builds Kubernetes clients for drguard's kubernetes
// targets. Probes and actions share it, so that every client honours the
// same settings: the target's kubeconfig and context, or the in-cluster
// configuration when the target names no kubeconfig.
package kubeclient

import (
	"fmt"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// RESTConfig returns the client configuration of t: its kubeconfig with
// its context (the kubeconfig's current context when t names none), or
// the in-cluster configuration. It reads files only; the first API call
// dials.
func RESTConfig(t config.KubernetesTarget, userAgent string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if t.Kubeconfig != "" {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: t.Kubeconfig}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: t.Context}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes target %s: client configuration: %w", t.Name, err)
	}
	rc.UserAgent = userAgent
	return rc, nil
}

// New returns a clientset for t (see RESTConfig).
func New(t config.KubernetesTarget, userAgent string) (kubernetes.Interface, error) {
	rc, err := RESTConfig(t, userAgent)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes target %s: %w", t.Name, err)
	}
	return c, nil
}

// Cache holds one clientset per kubernetes target, built on first use. It
// is safe for concurrent use.
type Cache struct {
	userAgent string

	mu      sync.Mutex
	clients map[string]kubernetes.Interface
}

// NewCache returns an empty cache whose clients send userAgent.
func NewCache(userAgent string) *Cache {
	return &Cache{userAgent: userAgent, clients: map[string]kubernetes.Interface{}}
}

// Client returns the cached clientset of t, building it on first use.
// Building reads files only, so it runs under the cache's lock.
func (c *Cache) Client(t config.KubernetesTarget) (kubernetes.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.clients[t.Name]; ok {
		return k, nil
	}
	k, err := New(t, c.userAgent)
	if err != nil {
		return nil, err
	}
	c.clients[t.Name] = k
	return k, nil
}

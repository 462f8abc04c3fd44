package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// kubeCommonParams are the params every kubernetes.* action takes:
// target names a kubernetes target of the configuration (default: the
// run's target when it is one, else the only one); namespace overrides the
// target's namespace.
var kubeCommonParams = []string{"target", "namespace"}

// kubeBase is what every kubernetes.* action shares: the configuration and
// a client per kubernetes target, built on first use and cached.
type kubeBase struct {
	cfg *config.Config
	log *slog.Logger

	mu      sync.Mutex
	clients map[string]kubernetes.Interface
}

func newKubeBase(d Deps) kubeBase {
	d = d.withDefaults()
	return kubeBase{cfg: d.Config, log: d.Logger, clients: map[string]kubernetes.Interface{}}
}

// kubeCall is one resolved call: the client, its target and namespace.
type kubeCall struct {
	client    kubernetes.Interface
	target    config.KubernetesTarget
	namespace string
}

// resolve picks the target and namespace of a step and returns a client.
func (b *kubeBase) resolve(req Request) (kubeCall, error) {
	param, err := stringParam(req.Params, "target", "")
	if err != nil {
		return kubeCall{}, err
	}
	targets := b.cfg.Targets.Kubernetes
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	i, err := pickTarget(config.KindKubernetes, names, param, req.Target)
	if err != nil {
		return kubeCall{}, fmt.Errorf("kubernetes: %w", err)
	}
	t := targets[i]
	ns, err := stringParam(req.Params, "namespace", "")
	if err != nil {
		return kubeCall{}, err
	}
	if ns == "" {
		ns = t.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	c, err := b.client(t)
	if err != nil {
		return kubeCall{}, err
	}
	return kubeCall{client: c, target: t, namespace: ns}, nil
}

// client returns the cached client of t, building it from t's kubeconfig
// (and context), or from the in-cluster configuration when t has none.
// Building reads files only; the first API call dials.
func (b *kubeBase) client(t config.KubernetesTarget) (kubernetes.Interface, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[t.Name]; ok {
		return c, nil
	}
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
	rc.UserAgent = "drguard"
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes target %s: %w", t.Name, err)
	}
	b.clients[t.Name] = c
	return c, nil
}

// kubeObject names what a call was about, for error messages.
type kubeObject struct {
	verb     string // RBAC verb: get, patch, update, delete
	resource string // RBAC resource: pods, deployments/scale, secrets
	name     string
	ns       string
}

// forbiddenUserRE finds the user in an RBAC refusal's message.
var forbiddenUserRE = regexp.MustCompile(`User "([^"]+)"`)

// kubeError words an API error for the journal: what was refused or
// missing, for whom, and what RBAC would need. It never includes request
// bodies (a patched secret's values).
func kubeError(ctx context.Context, err error, o kubeObject) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf("%s %q in namespace %s", singular(o.resource), o.name, o.ns)
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: forbidden: %s cannot %s %s in namespace %s (%s %q; the Role must grant verb %q on %q)",
			forbiddenWho(err), o.verb, o.resource, o.ns, singular(o.resource), o.name, o.verb, o.resource)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("kubernetes: %s not found", what)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("kubernetes: unauthorized: the API server rejected drguard's credentials (%s %s)", o.verb, what)
	case apierrors.IsConflict(err):
		return fmt.Errorf("kubernetes: conflict on %s: it changed while drguard updated it; retry", what)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("kubernetes: %s %s: timed out", o.verb, what)
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return fmt.Errorf("kubernetes: %s %s: %s", o.verb, what, se.Status().Message)
	}
	return fmt.Errorf("kubernetes: %s %s: %v", o.verb, what, err)
}

// forbiddenWho turns `User "system:serviceaccount:ns:drguard"` into
// "serviceaccount drguard".
func forbiddenWho(err error) string {
	m := forbiddenUserRE.FindStringSubmatch(err.Error())
	if m == nil {
		return "drguard's credentials"
	}
	if parts := strings.Split(m[1], ":"); len(parts) == 4 && parts[0] == "system" && parts[1] == "serviceaccount" {
		return "serviceaccount " + parts[3]
	}
	return "user " + m[1]
}

// singular turns an RBAC resource into the word for one object:
// "deployments/scale" → "deployment", "pods/log" → "pod".
func singular(resource string) string {
	r, _, _ := strings.Cut(resource, "/")
	return strings.TrimSuffix(r, "s")
}

// validateKubeName checks a required object name param: a DNS subdomain,
// unless it is still a template.
func validateKubeName(params map[string]any, key string, unrendered bool) (string, error) {
	s, err := requireString(params, key)
	if err != nil {
		return "", err
	}
	if unrendered && isTemplate(s) {
		return s, nil
	}
	if len(s) > 253 || !kubeNameRE.MatchString(s) {
		return "", fmt.Errorf("param %q: %q is not a valid Kubernetes object name", key, s)
	}
	return s, nil
}

var kubeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// validateKubeCommon checks the target and namespace params.
func validateKubeCommon(params map[string]any) error {
	if _, err := stringParam(params, "target", ""); err != nil {
		return err
	}
	ns, err := stringParam(params, "namespace", "")
	if err != nil {
		return err
	}
	if ns != "" && !isTemplate(ns) && (len(ns) > 63 || !kubeNameRE.MatchString(ns) || strings.Contains(ns, ".")) {
		return fmt.Errorf("param \"namespace\": %q is not a valid namespace name", ns)
	}
	return nil
}

// workloadKind is a kind of workload that kubernetes.scale and
// kubernetes.rollout_restart act on, as written in params.
type workloadKind string

const (
	kindDeployment  workloadKind = "deployment"
	kindStatefulSet workloadKind = "statefulset"
	kindDaemonSet   workloadKind = "daemonset"
)

// kindParam returns the kind param, lower-cased, checked against allowed.
func kindParam(params map[string]any, unrendered bool, allowed ...workloadKind) (workloadKind, error) {
	s, err := stringParam(params, "kind", string(kindDeployment))
	if err != nil {
		return "", err
	}
	if unrendered && isTemplate(s) {
		return kindDeployment, nil
	}
	k := workloadKind(strings.ToLower(strings.TrimSpace(s)))
	for _, a := range allowed {
		if k == a {
			return k, nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return "", fmt.Errorf("param \"kind\": %q is not one of %s", s, strings.Join(names, ", "))
}

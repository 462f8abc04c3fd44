package action

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/kubeclient"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// kubeCommon are the params every kubernetes.* action takes: target names
// a kubernetes target of the configuration (default: the run's target when
// it is one, else the only one); namespace overrides the target's
// namespace.
type kubeCommon struct {
	Target    string `param:"target"`
	Namespace string `param:"namespace"`
}

func (c *kubeCommon) checkCommon(t params.Templates) error {
	ns := c.Namespace
	if ns != "" && t.Literal("namespace") && (len(ns) > 63 || !kubeNameRE.MatchString(ns) || strings.Contains(ns, ".")) {
		return params.Errorf("namespace", "%q is not a valid namespace name", ns)
	}
	return nil
}

// kubeBase is what every kubernetes.* action shares: the configuration and
// the shared Kubernetes client factory.
type kubeBase struct {
	cfg  *config.Config
	log  *slog.Logger
	kube *kubeclient.Cache
}

func newKubeBase(d Deps) kubeBase {
	return kubeBase{cfg: d.Config, log: d.Logger, kube: d.Kube}
}

// kubeCall is one resolved call: the client, its target and namespace.
type kubeCall struct {
	client    kubernetes.Interface
	target    config.KubernetesTarget
	namespace string
}

// resolve picks the target and namespace of a step and returns a client.
func (b *kubeBase) resolve(req Request, c kubeCommon) (kubeCall, error) {
	targets := b.cfg.Targets.Kubernetes
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	i, err := pickTarget(config.KindKubernetes, names, c.Target, req.Target)
	if err != nil {
		return kubeCall{}, fmt.Errorf("kubernetes: %w", err)
	}
	t := targets[i]
	ns := cmp.Or(c.Namespace, t.Namespace, "default")
	client, err := b.kube.Client(t)
	if err != nil {
		return kubeCall{}, err
	}
	return kubeCall{client: client, target: t, namespace: ns}, nil
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

// checkKubeName checks a required object name param: a DNS subdomain,
// unless it is still a template.
func checkKubeName(t params.Templates, key, name string) error {
	if strings.TrimSpace(name) == "" {
		return params.Required(key, "")
	}
	if t.Literal(key) && (len(name) > 253 || !kubeNameRE.MatchString(name)) {
		return params.Errorf(key, "%q is not a valid Kubernetes object name", name)
	}
	return nil
}

var kubeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// workloadKind is a kind of workload that kubernetes.scale and
// kubernetes.rollout_restart act on, as written in params.
type workloadKind string

const (
	kindDeployment  workloadKind = "deployment"
	kindStatefulSet workloadKind = "statefulset"
	kindDaemonSet   workloadKind = "daemonset"
)

// checkKind lower-cases *kind and checks it against allowed, unless it is
// still a template.
func checkKind(t params.Templates, kind *workloadKind, allowed ...workloadKind) error {
	if !t.Literal("kind") {
		return nil
	}
	*kind = workloadKind(strings.ToLower(strings.TrimSpace(string(*kind))))
	for _, a := range allowed {
		if *kind == a {
			return nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return params.Errorf("kind", "%q is not one of %s", string(*kind), strings.Join(names, ", "))
}

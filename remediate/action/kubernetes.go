package action

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// kubeNeed is one RBAC permission a kubernetes.* step needs on its object:
// a verb on a resource (and subresource) of an API group.
type kubeNeed struct{ verb, group, resource, subresource string }

// String writes the permission as RBAC rules name it: "update
// deployments/scale".
func (n kubeNeed) String() string {
	r := n.resource
	if n.subresource != "" {
		r += "/" + n.subresource
	}
	return n.verb + " " + r
}

// preflight checks a kubernetes.* step without changing anything: the
// target's client and credentials (who the API server says drguard is),
// a SelfSubjectAccessReview for every permission the step needs on its
// object, and, with exists (an API call that changes nothing), that the
// object is there.
func (b *kubeBase) preflight(ctx context.Context, req Request, c kubeCommon, name string, needs []kubeNeed, exists func(context.Context, kubeCall) error) Preflight {
	var pf Preflight
	kc, err := b.resolve(req, c)
	if err != nil {
		pf.fail("target", c.Target, "%v", err)
		return pf
	}
	where := kc.target.Name
	who := "drguard's credentials"
	r, err := kc.client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	switch {
	case err == nil:
		who = r.Status.UserInfo.Username
		pf.pass("credentials", where, "the API server accepts drguard as %s", who)
	case apierrors.IsNotFound(err):
		// An API server before 1.28 has no SelfSubjectReview; the access
		// reviews below still show what is allowed.
	default:
		pf.fail("credentials", where, "%v", kubeError(ctx, err, kubeObject{"create", "selfsubjectreviews", "", kc.namespace}))
		return pf
	}
	for _, n := range needs {
		about := fmt.Sprintf("%s: %s %s/%s", where, n, kc.namespace, name)
		sar, err := kc.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: kc.namespace, Verb: n.verb, Group: n.group, Resource: n.resource, Subresource: n.subresource, Name: name,
			}},
		}, metav1.CreateOptions{})
		switch {
		case err != nil:
			pf.fail("rbac", about, "access review failed: %v", kubeError(ctx, err, kubeObject{"create", "selfsubjectaccessreviews", "", kc.namespace}))
		case sar.Status.Allowed:
			pf.pass("rbac", about, "allowed")
		default:
			res := strings.TrimPrefix(n.String(), n.verb+" ")
			pf.fail("rbac", about, "%s may not %s %s %q in namespace %s: the Role must grant verb %q on %q%s",
				who, n.verb, res, name, kc.namespace, n.verb, res, denied(sar.Status.Reason))
		}
	}
	if exists == nil {
		return pf
	}
	res := needs[0].resource
	about := fmt.Sprintf("%s: %s %s/%s", where, res, kc.namespace, name)
	switch err := exists(ctx, kc); {
	case err == nil:
		pf.pass("exists", about, "%s %s/%s exists", singular(res), kc.namespace, name)
	case apierrors.IsNotFound(err):
		pf.fail("exists", about, "%s %s/%s not found", singular(res), kc.namespace, name).Missing = "kubernetes " + res + " " + kc.namespace + "/" + name
	default:
		pf.fail("exists", about, "cannot tell whether it exists: %v", kubeError(ctx, err, kubeObject{"get", res, name, kc.namespace}))
	}
	return pf
}

// denied quotes the authorizer's reason for a refusal, when it gave one.
func denied(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// dryRunPatch is a server-side dry run of an empty merge patch: the API
// server checks the object exists and the caller may patch it, and
// persists nothing.
var dryRunPatch = metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}

// emptyPatch is the merge patch that changes nothing.
var emptyPatch = []byte("{}")

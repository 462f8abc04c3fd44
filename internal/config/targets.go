package config

// Target kinds, as the keys under targets.
const (
	KindPostgres   = "postgres"
	KindRedis      = "redis"
	KindHTTP       = "http"
	KindS3         = "s3"
	KindKubernetes = "kubernetes"
	KindAWS        = "aws"
)

// targetRef is one target's name, service and place in the file.
type targetRef struct {
	kind, name, service, path string
}

// all lists every target in file order.
func (t *Targets) all() []targetRef {
	var out []targetRef
	add := func(kind string, i int, name, service string) {
		out = append(out, targetRef{kind, name, service, indexPath("targets."+kind, i)})
	}
	for i, x := range t.Postgres {
		add(KindPostgres, i, x.Name, x.Service)
	}
	for i, x := range t.Redis {
		add(KindRedis, i, x.Name, x.Service)
	}
	for i, x := range t.HTTP {
		add(KindHTTP, i, x.Name, x.Service)
	}
	for i, x := range t.S3 {
		add(KindS3, i, x.Name, x.Service)
	}
	for i, x := range t.Kubernetes {
		add(KindKubernetes, i, x.Name, x.Service)
	}
	for i, x := range t.AWS {
		add(KindAWS, i, x.Name, x.Service)
	}
	return out
}

// Kinds returns the kinds of target that have the given name, in the order
// of the targets section; empty when no target has that name.
func (t *Targets) Kinds(name string) []string {
	var kinds []string
	for _, r := range t.all() {
		if r.name == name && name != "" {
			kinds = append(kinds, r.kind)
		}
	}
	return kinds
}

// hasKind reports whether a target of the given kind has the given name.
func (t *Targets) hasKind(name, kind string) bool {
	for _, k := range t.Kinds(name) {
		if k == kind {
			return true
		}
	}
	return false
}

// service returns the service of the first target with the given name.
func (t *Targets) service(name string) string {
	for _, r := range t.all() {
		if r.name == name && name != "" && r.service != "" {
			return r.service
		}
	}
	return ""
}

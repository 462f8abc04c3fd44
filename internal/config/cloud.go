package config

import (
	"regexp"
	"time"

	"github.com/prometheus/common/model"
)

// Defaults of AWS targets.
const (
	// DefaultAWSMaxAttempts bounds the attempts of one AWS API call.
	DefaultAWSMaxAttempts = 5
	// DefaultAWSMaxBackoff caps the delay between two attempts.
	DefaultAWSMaxBackoff = model.Duration(20 * time.Second)
)

// dnsLabelRE is a Kubernetes namespace name (an RFC 1123 label).
var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// KubernetesTarget returns the kubernetes target with the given name.
func (t *Targets) KubernetesTarget(name string) (KubernetesTarget, bool) {
	for _, x := range t.Kubernetes {
		if x.Name == name {
			return x, true
		}
	}
	return KubernetesTarget{}, false
}

// AWSTarget returns the aws target with the given name.
func (t *Targets) AWSTarget(name string) (AWSTarget, bool) {
	for _, x := range t.AWS {
		if x.Name == name {
			return x, true
		}
	}
	return AWSTarget{}, false
}

// applyCloudDefaults fills the AWS retry defaults.
func applyCloudDefaults(c *Config) {
	for i := range c.Targets.AWS {
		a := &c.Targets.AWS[i]
		if a.MaxAttempts == 0 {
			a.MaxAttempts = DefaultAWSMaxAttempts
		}
		setDuration(&a.MaxBackoff, DefaultAWSMaxBackoff)
	}
}

// cloudTargets checks the kubernetes and aws targets.
func (v *validator) cloudTargets() {
	for i, x := range v.c.Targets.Kubernetes {
		path := indexPath("targets.kubernetes", i)
		if x.Namespace != "" && (len(x.Namespace) > 63 || !dnsLabelRE.MatchString(x.Namespace)) {
			v.ps.errorf(joinPath(path, "namespace"), "%q is not a valid namespace name (lower-case letters, digits and '-')", x.Namespace)
		}
		if x.Context != "" && x.Kubeconfig == "" {
			v.ps.errorf(joinPath(path, "context"), "context needs a kubeconfig: the in-cluster configuration has no contexts")
		}
	}
	for i, x := range v.c.Targets.AWS {
		path := indexPath("targets.aws", i)
		if x.Endpoint != "" {
			v.absoluteURL(joinPath(path, "endpoint"), x.Endpoint, "http", "https")
		}
		if x.MaxAttempts < 1 {
			v.ps.errorf(joinPath(path, "max_attempts"), "must be at least 1")
		}
		v.nonNegative(joinPath(path, "max_backoff"), x.MaxBackoff)
	}
}

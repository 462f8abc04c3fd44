// Package probe holds drguard's probe kinds. Every kind is one function of
// one signature, Func, dispatched from the literal Registry: a new probe is
// one file plus one line. A probe returns a structured detect.Result (ok,
// reason, observations, details) and sets the metrics of what it measured.
package probe

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// Func runs one attempt of a probe. It must honour ctx's deadline on every
// outbound call, never put a secret (a DSN, a password) in the result, and
// leave Duration and CheckedAt to the caller (Env.Run fills them).
type Func func(ctx context.Context, env Env, p config.Probe) detect.Result

// Kind is one probe kind: how to run it and how to check its
// configuration (the target's kind and the params) before it runs.
type Kind struct {
	// Run runs one attempt.
	Run Func
	// Validate checks p's target and params against c.
	Validate func(p config.Probe, c *config.Config) error
}

// Registry maps every probe type to its kind.
var Registry = map[string]Kind{
	"http":                 {Run: HTTP, Validate: validateHTTP},
	"postgres_ready":       {Run: PostgresReady, Validate: validatePostgresReady},
	"postgres_heartbeat":   {Run: PostgresHeartbeat, Validate: validatePostgresHeartbeat},
	"postgres_replication": {Run: PostgresReplication, Validate: validatePostgresReplication},
	"postgres_integrity":   {Run: PostgresIntegrity, Validate: validatePostgresIntegrity},
	"redis_persistence":    {Run: RedisPersistence, Validate: validateRedisPersistence},
	"backup_age":           {Run: BackupAge, Validate: validateBackupAge},
	"kubernetes_workload":  {Run: KubernetesWorkload, Validate: validateKubernetesWorkload},
}

// Names returns the registered probe types, sorted.
func Names() []string {
	names := make([]string, 0, len(Registry))
	for n := range Registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Known returns the registered probe types as a set, the shape
// config.Known.ProbeTypes takes.
func Known() map[string]bool {
	known := make(map[string]bool, len(Registry))
	for n := range Registry {
		known[n] = true
	}
	return known
}

// Validators returns every kind's Validate, the shape config.Known.Probes
// takes, so that the loader reports probe problems with file and line.
func Validators() map[string]func(p config.Probe, c *config.Config) error {
	v := make(map[string]func(config.Probe, *config.Config) error, len(Registry))
	for n, k := range Registry {
		v[n] = k.Validate
	}
	return v
}

// Validate checks every probe of c: a known type, a target of the right
// kind, and params that decode and make sense. It returns all problems.
func Validate(c *config.Config) error {
	var errs []error
	for _, p := range c.Probes {
		if err := ValidateProbe(p, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ValidateProbe checks one probe against c.
func ValidateProbe(p config.Probe, c *config.Config) error {
	k, ok := Registry[p.Type]
	if !ok {
		return fmt.Errorf("probe %q: unknown type %q (known: %v)", p.Name, p.Type, Names())
	}
	if err := k.Validate(p, c); err != nil {
		return fmt.Errorf("probe %q (%s): %w", p.Name, p.Type, err)
	}
	return nil
}

// Run runs one attempt of p with the kind its type names, and fills the
// result's CheckedAt and Duration. It has the signature of
// detect.RunFunc, so a scheduler takes env.Run directly.
func (e Env) Run(ctx context.Context, p config.Probe) detect.Result {
	start := e.now()
	var r detect.Result
	if k, ok := Registry[p.Type]; ok {
		r = k.Run(ctx, e, p)
	} else {
		r = fail("unknown probe type %q", p.Type)
	}
	r.CheckedAt = start
	r.Duration = e.now().Sub(start)
	return r
}

var _ detect.RunFunc = Env{}.Run

// fail returns a failed result with a formatted reason.
func fail(format string, args ...any) detect.Result {
	return detect.Result{OK: false, Reason: fmt.Sprintf(format, args...)}
}

// result accumulates observations, details and failure reasons while a
// probe runs, so that a failing probe still reports what it saw.
type result struct {
	obs     map[string]float64
	details map[string]string
	reasons []string
}

func newResult() *result {
	return &result{obs: map[string]float64{}, details: map[string]string{}}
}

// observe records a number.
func (r *result) observe(name string, v float64) { r.obs[name] = v }

// detail records a string.
func (r *result) detail(name, v string) { r.details[name] = v }

// failf adds a failure reason.
func (r *result) failf(format string, args ...any) {
	r.reasons = append(r.reasons, fmt.Sprintf(format, args...))
}

// done returns the result: OK when no reason was added; otherwise the
// reasons joined with "; ".
func (r *result) done() detect.Result {
	out := detect.Result{OK: len(r.reasons) == 0}
	for i, s := range r.reasons {
		if i > 0 {
			out.Reason += "; "
		}
		out.Reason += s
	}
	if len(r.obs) > 0 {
		out.Observations = r.obs
	}
	if len(r.details) > 0 {
		out.Details = r.details
	}
	return out
}

// boolf returns 1 for true and 0 for false, for observations and gauges.
func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

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
	"github.com/fruitfulplanet/drguard/internal/params"
)

// Runner runs one attempt of a compiled probe. It must honour ctx's
// deadline on every outbound call, never put a secret (a DSN, a password)
// in the result, and leave Duration and CheckedAt to the caller (Set.Run
// fills them). It gets its clients, metrics and clock from env.
type Runner func(ctx context.Context, env Env) detect.Result

// Compiler decodes one probe's params strictly into its kind's typed
// params (defaults first, then the values, then checks; regular
// expressions compiled), resolves its target in c, and returns the runner
// that the scheduler calls at every attempt without decoding again. It
// does no I/O, so the configuration loader uses it to validate.
type Compiler func(p config.Probe, c *config.Config) (Runner, error)

// Registry maps every probe type to its compiler: a new probe kind is one
// file plus one line here.
var Registry = map[string]Compiler{
	"http":                 compileHTTP,
	"postgres_ready":       compilePostgresReady,
	"postgres_heartbeat":   compilePostgresHeartbeat,
	"postgres_replication": compilePostgresReplication,
	"postgres_integrity":   compilePostgresIntegrity,
	"redis_persistence":    compileRedisPersistence,
	"backup_age":           compileBackupAge,
	"kubernetes_workload":  compileKubernetesWorkload,
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

// Validators returns a check per kind, the shape config.Known.Probes
// takes: it compiles the probe and drops the runner, so that the loader
// reports each params problem at its key's file and line.
func Validators() map[string]func(p config.Probe, c *config.Config) error {
	v := make(map[string]func(config.Probe, *config.Config) error, len(Registry))
	for n, compile := range Registry {
		v[n] = func(p config.Probe, c *config.Config) error {
			_, err := compile(p, c)
			return err
		}
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
	_, err := compile(p, c)
	return err
}

// compile compiles one probe with the compiler its type names.
func compile(p config.Probe, c *config.Config) (Runner, error) {
	build, ok := Registry[p.Type]
	if !ok {
		return nil, fmt.Errorf("probe %q: unknown type %q (known: %v)", p.Name, p.Type, Names())
	}
	run, err := build(p, c)
	if err != nil {
		return nil, fmt.Errorf("probe %q (%s): %w", p.Name, p.Type, err)
	}
	return run, nil
}

// compileKind is the compiler of a probe kind whose params decode into P
// and whose target resolves (and is prepared once) into T: it decodes p's
// params into c (which may hold defaults the kind's defaults method cannot
// know), resolves p's target with target, reports the problems of both at
// once, and returns the runner that calls run with the two.
func compileKind[P, T any](p config.Probe, cfg *config.Config, c *P,
	target func(*config.Config, string) (T, error), run func(context.Context, Env, T, *P) detect.Result) (Runner, error) {
	perr := decode(p, c)
	t, terr := target(cfg, p.Target)
	if err := errors.Join(terr, perr); err != nil {
		return nil, err
	}
	return func(ctx context.Context, env Env) detect.Result { return run(ctx, env, t, c) }, nil
}

// decode fills out (a pointer to a kind's params struct) with its
// defaults, then decodes p's params into it strictly, then checks it.
func decode(p config.Probe, out any) error {
	if d, ok := out.(interface{ defaults() }); ok {
		d.defaults()
	}
	if err := params.Decode(p.Params, out); err != nil {
		return err
	}
	if c, ok := out.(interface{ check() error }); ok {
		return c.check()
	}
	return nil
}

// Set is a configuration's probes, each compiled once, run with one
// environment.
type Set struct {
	env     Env
	runners map[string]Runner
}

// Compile compiles probes against e's configuration. It returns every
// problem, or the set.
func (e Env) Compile(probes []config.Probe) (*Set, error) {
	s := &Set{env: e, runners: make(map[string]Runner, len(probes))}
	var errs []error
	for _, p := range probes {
		run, err := compile(p, e.Config)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.runners[p.Name] = run
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs one attempt of p with its compiled runner, and fills the
// result's CheckedAt and Duration. It has the signature of detect.RunFunc,
// so a scheduler takes set.Run directly.
func (s *Set) Run(ctx context.Context, p config.Probe) detect.Result {
	start := s.env.now()
	var r detect.Result
	if run, ok := s.runners[p.Name]; ok {
		r = run(ctx, s.env)
	} else {
		r = fail("probe %q was not compiled", p.Name)
	}
	r.CheckedAt = start
	r.Duration = s.env.now().Sub(start)
	return r
}

var _ detect.RunFunc = (*Set)(nil).Run

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

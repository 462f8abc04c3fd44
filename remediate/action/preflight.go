package action

import (
	"context"
	"fmt"
)

// Verdicts of a preflight check.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
	// VerdictWarn is a finding that does not stop the step from running,
	// or that could not be checked without changing anything.
	VerdictWarn = "warn"
)

// Check is one thing a preflight verified without changing anything: that
// credentials work, a permission is granted, an object exists, a program
// is there.
type Check struct {
	// Check names the kind of check: target, credentials, rbac, exists,
	// connect, program, notifier, params.
	Check string `json:"check"`
	// Target is what the check was about, e.g. "k8s-dr: deployments/scale
	// fruitfulplanet/fruitfulplanet-app".
	Target  string `json:"target"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	// Missing is set on a check that failed only because an object does
	// not exist yet: the object's key, e.g. "aws rds instance X". An
	// earlier step of the same plan that Creates it makes the check pass.
	Missing string `json:"missing,omitempty"`
}

// Preflight is what checking one step found.
type Preflight struct {
	Checks []Check `json:"checks"`
	// Creates are the objects the step would create (the keys of
	// Check.Missing).
	Creates []string `json:"creates,omitempty"`
}

// add appends a check.
func (p *Preflight) add(check, target, verdict, reason string) *Check {
	p.Checks = append(p.Checks, Check{Check: check, Target: target, Verdict: verdict, Reason: reason})
	return &p.Checks[len(p.Checks)-1]
}

// pass, fail and warn append a check with that verdict.
func (p *Preflight) pass(check, target, format string, args ...any) {
	p.add(check, target, VerdictPass, fmt.Sprintf(format, args...))
}

func (p *Preflight) fail(check, target, format string, args ...any) *Check {
	return p.add(check, target, VerdictFail, fmt.Sprintf(format, args...))
}

func (p *Preflight) warn(check, target, format string, args ...any) {
	p.add(check, target, VerdictWarn, fmt.Sprintf(format, args...))
}

// Preflighter is implemented by actions that can check, without changing
// anything, that a step could run: its credentials, its permissions, the
// objects it acts on, the program it starts. Every registered action
// implements it; an Action built elsewhere may not.
type Preflighter interface {
	Preflight(ctx context.Context, req Request) Preflight
}

// PreflightFunc checks an action's step with its decoded, checked params.
type PreflightFunc[P any] func(ctx context.Context, req Request, p *P) Preflight

// Preflight decodes the rendered params and checks the step.
func (a *typed[P, PP]) Preflight(ctx context.Context, req Request) Preflight {
	p, err := decodeRendered[P, PP](req.Params)
	if err != nil {
		var pf Preflight
		pf.fail("params", req.Step, "the rendered parameters are invalid: %v", err)
		return pf
	}
	return a.preflight(ctx, req, p)
}

var _ Preflighter = (*typed[execParams, *execParams])(nil)

package action

import (
	"context"

	"github.com/fruitfulplanet/drguard/internal/params"
)

// Kind is one action: what it declares, a static check of a step's
// unrendered params (nothing is built to check), and its constructor.
type Kind struct {
	Info  Info
	Check func(params map[string]any) error
	New   func(Deps) (Action, error)
}

// paramsOf is what an action's params struct P provides through *P: a
// check of its decoded values, given the keys that still hold templates
// (none once rendered). A params struct may also have a defaults method,
// called before decoding.
type paramsOf[P any] interface {
	*P
	check(t params.Templates) error
}

// RunFunc runs an action with its decoded, checked params.
type RunFunc[P any] func(ctx context.Context, req Request, p *P) (Outcome, error)

// define makes the Kind of an action whose params decode into P, which
// build provisions once into a RunFunc, and whose steps preflight checks
// without changing anything (drguard drill's dry run).
func define[P any, PP paramsOf[P]](info Info, build func(Deps) (RunFunc[P], error), preflight func(Deps) PreflightFunc[P]) Kind {
	return Kind{
		Info:  info,
		Check: checkParams[P, PP],
		New: func(d Deps) (Action, error) {
			d = d.withDefaults()
			run, err := build(d)
			if err != nil {
				return nil, err
			}
			return &typed[P, PP]{info: info, run: run, preflight: preflight(d)}, nil
		},
	}
}

// checkParams decodes a step's unrendered params into P strictly and
// checks its literal values; templated values pass unchecked.
func checkParams[P any, PP paramsOf[P]](raw map[string]any) error {
	var p P
	setDefaults(&p)
	tpl, err := params.DecodeTemplated(raw, &p)
	if err != nil {
		return err
	}
	return PP(&p).check(tpl)
}

// decodeRendered decodes a step's rendered params (as journaled) into P
// and checks every value.
func decodeRendered[P any, PP paramsOf[P]](raw map[string]any) (*P, error) {
	var p P
	setDefaults(&p)
	if err := params.Decode(raw, &p); err != nil {
		return nil, err
	}
	if err := PP(&p).check(nil); err != nil {
		return nil, err
	}
	return &p, nil
}

// setDefaults calls p's defaults method, when it has one.
func setDefaults(p any) {
	if d, ok := p.(interface{ defaults() }); ok {
		d.defaults()
	}
}

// typed is a provisioned action with params of type P.
type typed[P any, PP paramsOf[P]] struct {
	info      Info
	run       RunFunc[P]
	preflight PreflightFunc[P]
}

var _ Action = (*typed[execParams, *execParams])(nil)

// Info returns what the action declares.
func (a *typed[P, PP]) Info() Info { return a.info }

// Validate checks a step's unrendered params.
func (a *typed[P, PP]) Validate(raw map[string]any) error { return checkParams[P, PP](raw) }

// Run decodes the rendered params and runs the action.
func (a *typed[P, PP]) Run(ctx context.Context, req Request) (Outcome, error) {
	p, err := decodeRendered[P, PP](req.Params)
	if err != nil {
		return Outcome{}, err
	}
	return a.run(ctx, req, p)
}

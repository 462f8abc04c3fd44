package app

import (
	"context"
	"errors"

	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate/drill"
)

// drillAPI adapts the drill runner to the HTTP API's Drills interface, so
// that the server does not import the drill package.
type drillAPI struct{ r *drill.Runner }

var _ server.Drills = drillAPI{}

func (a drillAPI) List() (any, error) {
	s, err := a.r.Summaries()
	return s, err
}

func (a drillAPI) Start(ctx context.Context, name, actor, remote string) (store.DrillRun, error) {
	run, err := a.r.Start(ctx, name, actor, remote)
	return run, drillErr(err)
}

func (a drillAPI) Get(id string) (store.DrillRun, error) {
	run, err := a.r.Get(id)
	return run, drillErr(err)
}

func (a drillAPI) Abort(ctx context.Context, id, actor, remote string) (store.DrillRun, error) {
	run, err := a.r.Abort(ctx, id, actor, remote)
	return run, drillErr(err)
}

func (a drillAPI) Markdown(run store.DrillRun) string { return drill.Markdown(run) }

// drillErr classifies the runner's errors as the API's, keeping their
// message.
func drillErr(err error) error {
	switch {
	case errors.Is(err, drill.ErrNotFound):
		return apiError{kind: server.ErrNotFound, err: err}
	case errors.Is(err, drill.ErrConflict):
		return apiError{kind: server.ErrConflict, err: err}
	case errors.Is(err, drill.ErrNotLeader):
		return apiError{kind: server.ErrUnavailable, err: err}
	}
	return err
}

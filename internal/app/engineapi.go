package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate"
)

// engineAPI adapts the remediation engine to the HTTP API's Engine
// interface, so that the server does not import remediate.
type engineAPI struct{ e *remediate.Engine }

var _ server.Engine = engineAPI{}

func (a engineAPI) Wake() { a.e.Wake() }

func (a engineAPI) Decide(ctx context.Context, id string, d server.Decision) (store.Approval, error) {
	if d.ParamsHash != "" {
		pending, err := a.e.PendingApprovals()
		if err != nil {
			return store.Approval{}, err
		}
		for _, p := range pending {
			if p.ID == id && p.ParamsHash != d.ParamsHash {
				return store.Approval{}, fmt.Errorf("%w: approval %s now shows different parameters; reload and decide again", server.ErrConflict, id)
			}
		}
	}
	ap, err := a.e.Decide(ctx, id, remediate.Decision{
		Approve: d.Approve, Actor: d.Actor, Remote: d.Remote, Comment: d.Comment, Role: d.Identity.Role,
	})
	return ap, mapErr(err)
}

func (a engineAPI) SetPaused(ctx context.Context, paused bool, actor, remote string) error {
	return mapErr(a.e.SetPaused(ctx, paused, actor, remote))
}

func (a engineAPI) PendingApprovals() ([]store.Approval, error) { return a.e.PendingApprovals() }

func (a engineAPI) Incidents() ([]store.Incident, error) { return a.e.Incidents() }

func (a engineAPI) Incident(id string) (store.Incident, []store.Run, error) {
	in, runs, err := a.e.Incident(id)
	return in, runs, mapErr(err)
}

// mapErr translates engine errors into the API's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, remediate.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %v", server.ErrNotFound, err)
	case errors.Is(err, remediate.ErrConflict):
		return fmt.Errorf("%w: %v", server.ErrConflict, err)
	case errors.Is(err, remediate.ErrForbidden):
		return fmt.Errorf("%w: %v", server.ErrForbidden, err)
	default:
		return err
	}
}

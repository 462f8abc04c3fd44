package app

import (
	"context"
	"errors"

	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate"
)

// engineAPI adapts the remediation engine to the HTTP API's Engine
// interface, so that the server does not import remediate.
type engineAPI struct{ e *remediate.Engine }

var _ server.Engine = engineAPI{}

func (a engineAPI) Wake() { a.e.Wake() }

// Decide passes the decision, with the hash the approver saw, to the
// engine, which checks everything inside the decision's transaction.
func (a engineAPI) Decide(ctx context.Context, id string, d server.Decision) (store.Approval, error) {
	ap, err := a.e.Decide(ctx, id, remediate.Decision{
		Approve: d.Approve, Actor: d.Actor, Remote: d.Remote, Comment: d.Comment, Role: d.Identity.Role,
		ParamsHash: d.ParamsHash,
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

// mapErr translates engine errors into the API's, keeping the engine's
// message as it is: "conflict: approval …", not "conflict: conflict: …".
func mapErr(err error) error {
	kinds := []struct{ engine, api error }{
		{remediate.ErrNotFound, server.ErrNotFound},
		{store.ErrNotFound, server.ErrNotFound},
		{remediate.ErrConflict, server.ErrConflict},
		{remediate.ErrForbidden, server.ErrForbidden},
	}
	for _, k := range kinds {
		if errors.Is(err, k.engine) {
			return apiError{kind: k.api, err: err}
		}
	}
	return err
}

// apiError is an engine error classified as one of the API's: errors.Is
// matches both, and its message is the engine's.
type apiError struct{ kind, err error }

func (e apiError) Error() string   { return e.err.Error() }
func (e apiError) Unwrap() []error { return []error{e.kind, e.err} }

package action

import "errors"

// NewExec builds the exec action. (Placeholder until the engine lands.)
func NewExec(Deps) (Action, error) { return nil, errors.New("exec action: not implemented yet") }

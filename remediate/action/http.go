package action

import "errors"

// NewHTTP builds the http action. (Placeholder until the engine lands.)
func NewHTTP(Deps) (Action, error) { return nil, errors.New("http action: not implemented yet") }

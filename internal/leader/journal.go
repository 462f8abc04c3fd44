package leader

import (
	"errors"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Journal is the journal as the leader's components write it: every Update
// is fenced by the current term's lease, and a refusal ends the term.
type Journal struct {
	st *store.Store
	e  *Elector
}

// Journal returns the fenced journal of this replica's terms.
func (e *Elector) Journal() Journal { return Journal{st: e.o.Store, e: e} }

// Update runs fn in a journal transaction fenced by the current term's
// lease. It fails with ErrNotLeader between terms, and with
// store.ErrFenced (ending the term) when another replica took over.
func (j Journal) Update(fn func(*store.Tx) error) error {
	l, ok := j.e.Leading()
	if !ok {
		return ErrNotLeader
	}
	err := j.st.UpdateFenced(l, fn)
	if errors.Is(err, store.ErrFenced) {
		j.e.Fenced(l, err)
	}
	return err
}

// nopRegisterer registers nothing: metrics of an Elector built without
// any.
type nopRegisterer struct{}

func (nopRegisterer) Register(prometheus.Collector) error  { return nil }
func (nopRegisterer) MustRegister(...prometheus.Collector) {}
func (nopRegisterer) Unregister(prometheus.Collector) bool { return true }

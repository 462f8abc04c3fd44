package detect

import (
	"fmt"
	"sync"
)

// Hold stops the named probe's scheduled attempts until release is called:
// no attempt, no metric and no detection while held (Verify still runs
// it). A drill holds the probes that write its heartbeat from the moment it
// reads the last heartbeat before the injection until it has read the one
// the recovery left, so that no heartbeat written in between hides the
// data the recovery lost. Holds nest; release is idempotent.
func (s *Scheduler) Hold(name string) (release func(), err error) {
	st, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("unknown probe %q", name)
	}
	st.held.Add(1)
	s.log.Info("probe held", "probe", name)
	var once sync.Once
	return func() {
		once.Do(func() {
			st.held.Add(-1)
			s.log.Info("probe released", "probe", name)
		})
	}, nil
}

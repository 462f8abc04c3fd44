package probe

import (
	"sort"
	"sync"
	"time"
)

// lsnHistory remembers when a primary's WAL position was first seen at or
// past each value, so that a standby's byte position converts to time: a
// standby that has replayed up to R is behind since the primary was first
// seen past R. pg_stat_replication's replay_lag cannot be used for this: it
// stays small while replay is paused and is NULL when idle.
type lsnHistory struct {
	mu      sync.Mutex
	samples []lsnSample // strictly increasing lsn
}

type lsnSample struct {
	at  time.Time
	lsn float64
}

// maxLSNSamples bounds the history; samples are only added when the WAL
// position moved, so it spans many hours at any sane probe interval.
const maxLSNSamples = 4096

// add records that the primary's position was lsn at time at. A position
// lower than the last one means a different server or timeline: the
// history starts over.
func (h *lsnHistory) add(at time.Time, lsn float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.samples)
	switch {
	case n > 0 && lsn < h.samples[n-1].lsn:
		h.samples = h.samples[:0]
	case n > 0 && lsn == h.samples[n-1].lsn:
		return
	}
	if len(h.samples) >= maxLSNSamples {
		h.samples = append(h.samples[:0], h.samples[maxLSNSamples/4:]...)
	}
	h.samples = append(h.samples, lsnSample{at: at, lsn: lsn})
}

// behindSince returns when the primary was first seen past pos; false when
// pos is at or past every recorded position (caught up). When pos predates
// the whole history the oldest sample is returned: a lower bound.
func (h *lsnHistory) behindSince(pos float64) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := sort.Search(len(h.samples), func(i int) bool { return h.samples[i].lsn > pos })
	if i == len(h.samples) {
		return time.Time{}, false
	}
	return h.samples[i].at, true
}

package store

import (
	"bytes"
	"hash/maphash"
	"strconv"
	"sync"
	"time"
)

// Most of what Alertmanager sends is the same groups again, every
// group_interval and repeat_interval, and from every replica of an HA
// pair. A re-send whose alerts are each identical to a record the outbox
// made durable less than resendWindow ago changes nothing the journal
// holds: the engine would find the incident of that fingerprint and start
// time and only move its LastSeen and repeat count. Intake acknowledges
// such a re-send without writing it (and without the engine's work),
// which is safe because:
//
//   - an alert is covered only by a record whose write has returned: the
//     record is durable before any re-send is acknowledged on its strength;
//   - the comparison is of the record's exact bytes (labels and
//     annotations in key order) minus the receive time, so any change —
//     status, start or end time, a label, an annotation, the receiver,
//     evidence — is written as before;
//   - while writes of one key are in flight nothing of that key is
//     covered unless its durable content is unchanged by them, and if
//     concurrent writes carried different contents, or one failed, the key
//     is not covered until a later write completes alone;
//   - an entry expires resendWindow after its write, so that a re-send is
//     journaled at least once per window and whatever else touched the
//     incident (an alert that could not be processed, a journal restored)
//     is seen again within it. The first re-send after half the window is
//     written (the others still covered meanwhile), so that a steady
//     stream of re-sends is journaled about twice per window, not by
//     every connection at once when the entry expires.
//
// What a covered re-send does not do is move the incident's LastSeen or
// count in its repeats: both are as of the last journaled notification,
// at most resendWindow behind.

// resendWindow is how long after an alert's record became durable an
// identical re-send is acknowledged without being written.
const resendWindow = time.Second

// maxResendKeys bounds the index; beyond it, new keys are not indexed
// (and their re-sends are written) until expired entries are swept.
const maxResendKeys = 1 << 14

// resendIndex maps an alert's key (source, fingerprint, start time) to
// the content of its last durable record.
type resendIndex struct {
	mu   sync.Mutex
	keys map[string]*resendEntry
	// window replaces resendWindow when set (tests).
	window time.Duration
	swept  time.Time // the last sweep
	// seen holds hashes of keys written once and not indexed yet.
	seen map[uint64]struct{}
}

var resendSeed = maphash.MakeSeed()

func (x *resendIndex) span() time.Duration {
	if x.window > 0 {
		return x.window
	}
	return resendWindow
}

type resendEntry struct {
	content   []byte    // the durable record without its receive time; nil: none
	durableAt time.Time // when its write returned
	inflight  int       // writes of this key not yet returned
	pending   []byte    // the content of the first of them
	conflict  bool      // in-flight writes differ, or one failed
}

// resendAlert is one alert of a webhook as the index sees it: its key and
// its encoded record, split around the receive time.
type resendAlert struct {
	key        string
	head, tail []byte
}

// timeLen is the length of appendTime's encoding that starts with b.
func timeLen(b byte) int {
	if b == 0 {
		return 1
	}
	return 9
}

// resendKey returns an alert's index key.
func resendKey(a *Alert) string {
	var ns [20]byte
	return a.Source + "\x00" + a.Fingerprint + "\x00" + string(strconv.AppendInt(ns[:0], a.StartsAt.UnixNano(), 10))
}

// stale reports whether a covering entry is old enough to be refreshed
// and no write of its key is in flight.
func (e *resendEntry) stale(now time.Time, window time.Duration) bool {
	return e.inflight == 0 && now.Sub(e.durableAt) >= window/2
}

// covers reports whether ra is identical to the entry's durable content,
// written less than resendWindow before now, and no write of the key in
// flight carries anything else.
func (e *resendEntry) covers(ra *resendAlert, now time.Time, window time.Duration) bool {
	if e == nil || e.conflict || now.Sub(e.durableAt) >= window {
		return false
	}
	c := e.content
	if c == nil || len(c) != len(ra.head)+len(ra.tail) ||
		!bytes.Equal(c[:len(ra.head)], ra.head) || !bytes.Equal(c[len(ra.head):], ra.tail) {
		return false
	}
	return e.inflight == 0 || bytes.Equal(e.pending, c)
}

// admit decides which alerts must be written: it returns false for every
// alert covered by a durable record of the same content younger than
// resendWindow, unless that record is older than half the window and
// nothing refreshes it yet, and counts the others as in flight; each must later be
// settled with settle, with the keys admit returns as tracked. If every
// alert is covered it returns nil.
func (x *resendIndex) admit(alerts []resendAlert, now time.Time) (write []bool, tracked []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.keys == nil {
		x.keys, x.seen = make(map[string]*resendEntry), make(map[uint64]struct{})
	}
	var covered [8]bool
	cov := covered[:0]
	all := true
	for i := range alerts {
		e := x.keys[alerts[i].key]
		c := e.covers(&alerts[i], now, x.span())
		cov = append(cov, c)
		if !c || e.stale(now, x.span()) {
			all = false
		}
	}
	if all {
		return nil, nil
	}
	write = make([]bool, len(alerts))
	for i := range alerts {
		ra := &alerts[i]
		e := x.keys[ra.key]
		if cov[i] && !e.stale(now, x.span()) {
			continue
		}
		// Not covered, or covered by a record that is getting old and
		// that no write is refreshing yet: this one refreshes it, while
		// the re-sends after it are still covered.
		write[i] = true
		if e == nil {
			// A key is indexed from its second write on: most alerts
			// are sent once, and need no entry.
			h := maphash.String(resendSeed, ra.key)
			if _, ok := x.seen[h]; !ok {
				if len(x.seen) >= maxResendKeys {
					clear(x.seen)
				}
				x.seen[h] = struct{}{}
				continue
			}
			if len(x.keys) >= maxResendKeys && now.Sub(x.swept) >= x.span()/4 {
				// At most a few sweeps per window: under a flood of new
				// keys each would find little to drop.
				x.sweep(now, x.span())
				x.swept = now
			}
			if len(x.keys) >= maxResendKeys {
				continue // not indexed: written, never covered
			}
			e = &resendEntry{}
			x.keys[ra.key] = e
		}
		content := make([]byte, 0, len(ra.head)+len(ra.tail))
		content = append(append(content, ra.head...), ra.tail...)
		switch {
		case e.inflight == 0:
			e.pending, e.conflict = content, false
		case !bytes.Equal(e.pending, content):
			e.conflict = true
		}
		e.inflight++
		tracked = append(tracked, ra.key)
	}
	return write, tracked
}

// settle records the outcome of the writes admit counted in flight for
// req: ok is whether their write returned success. Once the last write of a key returns, the key is covered by
// its content only if every write since the key was last idle carried
// that content and succeeded.
// A request is settled once; later calls do nothing.
func (x *resendIndex) settle(req *enqueueReq, ok bool, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if req.settled {
		return
	}
	req.settled = true
	for _, k := range req.resent {
		e := x.keys[k]
		if e == nil || e.inflight == 0 {
			continue // cannot be: tracked keys stay until settled
		}
		e.inflight--
		if !ok {
			e.conflict = true
		}
		if e.inflight > 0 {
			continue
		}
		if e.conflict {
			e.content = nil
		} else {
			e.content, e.durableAt = e.pending, now
		}
		e.pending, e.conflict = nil, false
	}
}

// sweep drops the entries that cover nothing any more.
func (x *resendIndex) sweep(now time.Time, window time.Duration) {
	for k, e := range x.keys {
		if e.inflight == 0 && (e.content == nil || now.Sub(e.durableAt) >= window) {
			delete(x.keys, k)
		}
	}
}

// receivedAt is the re-send index's clock for a webhook: the latest
// receive time of its alerts (the time intake stamped on them), or now
// when none has one. Measuring the window between receive times, not
// between writes, bounds how far an incident's last_seen may lag the
// re-sends it did not record, on whatever clock stamped them.
func receivedAt(alerts []Alert) time.Time {
	var at time.Time
	for i := range alerts {
		if alerts[i].ReceivedAt.After(at) {
			at = alerts[i].ReceivedAt
		}
	}
	if at.IsZero() {
		return time.Now()
	}
	return at
}

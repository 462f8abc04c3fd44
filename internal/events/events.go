// Package events follows the journal's audit log and serves its changes of
// incidents, runs, steps and approvals as server-sent events
// (GET /api/v1/events). The audit log's sequence is the event ID, so events
// come in journal order and a client that reconnects with Last-Event-ID
// misses nothing.
package events

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// Event is one journaled change of an incident, run, step or approval, or
// of the kill switch.
type Event struct {
	// ID is the audit log's sequence number of the change.
	ID   uint64    `json:"id"`
	Time time.Time `json:"time"`
	// Kind is the audit action: incident.opened, run.created,
	// step.started, approval.voted, approval.approved, remediation.paused…
	Kind     string            `json:"kind"`
	Actor    string            `json:"actor"`
	Incident string            `json:"incident,omitempty"`
	Run      string            `json:"run,omitempty"`
	Step     string            `json:"step,omitempty"`
	Approval string            `json:"approval,omitempty"`
	Detail   map[string]string `json:"detail,omitempty"`
}

// FromAudit returns the event of an audit entry, and false for entries that
// are no change of an incident, run, step, approval or the kill switch
// (refused approvals, dead letters, backup retention…). The remote address
// of whoever made the change is left out.
func FromAudit(e store.AuditEntry) (Event, bool) {
	kind, _, _ := strings.Cut(e.Action, ".")
	ev := Event{ID: e.Seq, Time: e.Time, Kind: e.Action, Actor: e.Actor}
	detail := make(map[string]string, len(e.Detail))
	for k, v := range e.Detail {
		detail[k] = v
	}
	take := func(key string) string {
		v := detail[key]
		delete(detail, key)
		return v
	}
	switch kind {
	case "incident":
		ev.Incident = e.Subject
	case "run":
		ev.Run, ev.Incident = e.Subject, take("incident")
	case "step":
		ev.Run, ev.Incident, ev.Step = e.Subject, take("incident"), take("step")
	case "approval":
		if e.Action == "approval.refused" {
			return Event{}, false
		}
		ev.Approval, ev.Incident, ev.Run, ev.Step = e.Subject, take("incident"), take("run"), take("step")
	case "remediation":
	default:
		return Event{}, false
	}
	if len(detail) > 0 {
		ev.Detail = detail
	}
	return ev, true
}

// Feed reads events from the journal and wakes its subscribers when the
// audit log grows. It polls the log's last sequence (one cheap read) every
// poll interval while anyone is subscribed, so that it also sees entries
// other processes wrote into a shared journal.
type Feed struct {
	store *store.Store
	poll  time.Duration

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
	last uint64
}

// DefaultPoll is how often a Feed looks for new entries.
const DefaultPoll = 100 * time.Millisecond

// NewFeed returns a Feed over the journal; poll ≤ 0 means DefaultPoll.
func NewFeed(st *store.Store, poll time.Duration) *Feed {
	if poll <= 0 {
		poll = DefaultPoll
	}
	return &Feed{store: st, poll: poll, subs: map[chan struct{}]struct{}{}}
}

// Subscribe returns a channel that receives a value (coalesced: at most one
// waits) after new entries are journaled, and a function that ends the
// subscription.
func (f *Feed) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

// Subscribers is how many subscriptions are open.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// Run polls the journal until ctx ends, then returns nil.
func (f *Feed) Run(ctx context.Context) error {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if f.Subscribers() == 0 {
			continue
		}
		last, err := f.Last()
		if err != nil {
			continue // the journal's readiness shows in /readyz; try again next tick
		}
		f.mu.Lock()
		grew := last != f.last
		f.last = last
		if grew {
			for ch := range f.subs {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
		f.mu.Unlock()
	}
}

// Last returns the sequence of the newest journaled change.
func (f *Feed) Last() (uint64, error) {
	var last uint64
	err := f.store.View(func(tx *store.Tx) error {
		var err error
		last, err = tx.LastAuditSeq()
		return err
	})
	return last, err
}

// Read returns up to limit events after sequence after that keep accepts
// (nil keeps all), in journal order, and the sequence it read up to: the
// next Read starts there, past the entries that were not events or were
// not kept. One Read looks at no more than 16 × limit entries (at least
// 4096), so a selective filter over a long log costs a few reads, each
// short.
func (f *Feed) Read(after uint64, limit int, keep func(Event) bool) ([]Event, uint64, error) {
	var out []Event
	cursor, scanned := after, 0
	maxScan := max(16*limit, 4096)
	err := f.store.View(func(tx *store.Tx) error {
		return tx.AuditAfter(after, func(e store.AuditEntry) (bool, error) {
			cursor, scanned = e.Seq, scanned+1
			if ev, ok := FromAudit(e); ok && (keep == nil || keep(ev)) {
				out = append(out, ev)
			}
			return len(out) < limit && scanned < maxScan, nil
		})
	})
	return out, cursor, err
}

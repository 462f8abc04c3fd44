// Package leader elects one leader among drguard replicas that share a
// journal, through the journal's lease (store.AcquireLease): a replica that
// takes the lease leads one term, renews the lease every renew_interval,
// and runs the leader-only components (the remediation engine, the probe
// scheduler, watchdogs, backups, status updates) for as long as the term
// lasts. The term ends — the components are cancelled at once — when a
// renewal or a write is refused (another replica took over: ErrFenced),
// when no renewal succeeded within renew_deadline (before the lease can
// expire and be taken over), when a component fails, or at shutdown, when
// the lease is released so that a follower takes over at once.
//
// A Lease is not a lock (client-go's leader election "does not guarantee
// fencing"; two leaders were seen at once for up to a minute): what makes
// one leader act at a time is that every journal write of a term is fenced
// by its lease's epoch, in the write's own transaction. The embedded
// journal is one process behind a file lock: its lease is always held.
package leader

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// ErrNotLeader is returned by writes that only the leader may make, on a
// replica that does not lead.
var ErrNotLeader = errors.New("this replica is not the leader")

// errDeadline ends a term whose lease was not renewed in time.
var errDeadline = errors.New("the lease was not renewed within renew_deadline")

// releaseTimeout bounds releasing the lease at the end of a term.
const releaseTimeout = 2 * time.Second

// Options configure an Elector.
type Options struct {
	Store *store.Store
	// Holder names this process in the lease; "" takes NewHolder().
	Holder string
	// Lease has the ttl, renew interval and deadline (config defaults
	// applied).
	Lease   config.Lease
	Metrics *metrics.Leader
	Logger  *slog.Logger
	// Lead runs the leader-only components for one term, until ctx ends
	// (it returns nil then) or one fails (it returns the error, and the
	// term ends). Every journal write it makes must be fenced by lease.
	Lead func(ctx context.Context, lease store.Lease) error
	// SteppedDown, when set, is called after a term has ended and Lead
	// has returned.
	SteppedDown func()
}

// Elector runs the election of one replica. Its methods are safe for
// concurrent use.
type Elector struct {
	o   Options
	log *slog.Logger

	mu sync.Mutex
	// lease is the current term's lease; nil while following.
	lease *store.Lease
	// end ends the current term with a cause.
	end context.CancelCauseFunc
	// seen is what this replica last learnt of the lease while following:
	// who holds it, or why it could not be read.
	seen    *store.LeaseHeldError
	seenErr error
}

// New checks the options and returns an Elector; Run starts it.
func New(o Options) (*Elector, error) {
	if o.Store == nil || o.Lead == nil {
		return nil, errors.New("leader: a store and a Lead function are required")
	}
	l := o.Lease
	if l.TTL < config.MinLeaseTTL || l.RenewDeadline <= 0 || l.RenewDeadline >= l.TTL || l.RenewInterval <= 0 || l.RenewInterval >= l.RenewDeadline {
		return nil, fmt.Errorf("leader: lease timings ttl %s, renew_deadline %s, renew_interval %s: want renew_interval < renew_deadline < ttl",
			l.TTL, l.RenewDeadline, l.RenewInterval)
	}
	if o.Holder == "" {
		o.Holder = NewHolder()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewLeader(nopRegisterer{})
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Elector{o: o, log: log.With("holder", o.Holder)}, nil
}

// NewHolder names this process uniquely: host name, process ID and a
// random suffix, so that a restarted process never takes its
// predecessor's lease for its own.
func NewHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "drguard"
	}
	b := make([]byte, 4)
	_, _ = crand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Holder is this replica's name in the lease.
func (e *Elector) Holder() string { return e.o.Holder }

// Leading returns the current term's lease, and whether this replica
// leads.
func (e *Elector) Leading() (store.Lease, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lease == nil {
		return store.Lease{}, false
	}
	return *e.lease, true
}

// Fenced reports that a write fenced by l was refused by the lease (the
// caller got store.ErrFenced). It counts the refusal, and ends the current
// term at once if l is its lease: another replica leads.
func (e *Elector) Fenced(l store.Lease, err error) {
	e.o.Metrics.FencedWrites.Inc()
	e.mu.Lock()
	cur, end := e.lease, e.end
	e.mu.Unlock()
	if cur != nil && cur.Epoch == l.Epoch && cur.Holder == l.Holder {
		e.log.Error("a write of this term was refused by the lease: stepping down at once", "epoch", l.Epoch, "err", err)
		end(fmt.Errorf("%w: %w", store.ErrFenced, err))
		return
	}
	e.log.Warn("a write of an earlier term was refused by the lease", "epoch", l.Epoch, "err", err)
}

// Status says what this replica knows of the leadership, for /readyz.
func (e *Elector) Status() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.lease != nil:
		return fmt.Sprintf("leader (epoch %d)", e.lease.Epoch)
	case e.seen != nil:
		return fmt.Sprintf("follower of %s (epoch %d)", e.seen.Holder, e.seen.Epoch)
	case e.seenErr != nil:
		return "follower: cannot read the lease: " + e.seenErr.Error()
	}
	return "follower: no leader yet"
}

// Run takes part in the election until ctx ends: it follows while another
// replica holds the lease, trying again when that lease would expire (or
// every renew_interval), and leads a term whenever it gets the lease. At
// the end it releases a lease it holds. It returns nil.
func (e *Elector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		l, wait := e.acquire(ctx)
		if l == nil {
			sleep(ctx, wait)
			continue
		}
		e.lead(ctx, *l)
		// Give the other replicas a chance before trying again.
		sleep(ctx, e.jitter(time.Duration(e.o.Lease.RenewInterval)))
	}
	return nil
}

// acquire tries to take the lease once. It returns the lease, or how long
// to wait before trying again: until the holder's lease would expire, at
// most renew_interval.
func (e *Elector) acquire(ctx context.Context) (*store.Lease, time.Duration) {
	interval := time.Duration(e.o.Lease.RenewInterval)
	actx, cancel := context.WithTimeout(ctx, interval)
	defer cancel()
	l, err := e.o.Store.AcquireLease(actx, store.LeaderLease, e.o.Holder, time.Duration(e.o.Lease.TTL))
	var held *store.LeaseHeldError
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err == nil:
		e.seen, e.seenErr = nil, nil
		return &l, 0
	case errors.As(err, &held):
		if e.seen == nil || e.seen.Holder != held.Holder || e.seen.Epoch != held.Epoch {
			e.log.Info("following", "leader", held.Holder, "epoch", held.Epoch, "expires", held.Expires)
		}
		e.seen, e.seenErr = held, nil
		// Wake when the lease would expire: a follower takes over a dead
		// leader's lease as soon as it may.
		return nil, min(held.Remaining+e.jitter(20*time.Millisecond), interval)
	default:
		if ctx.Err() == nil && (e.seenErr == nil || e.seenErr.Error() != err.Error()) {
			e.log.Warn("cannot take part in the election: the journal's lease cannot be read", "err", err)
		}
		e.seen, e.seenErr = nil, err
		return nil, e.jitter(interval)
	}
}

// jitter returns d plus up to a tenth of it, so that replicas do not try
// in step.
func (e *Elector) jitter(d time.Duration) time.Duration {
	return d + rand.N(d/10+1)
}

// lead runs one term with lease l until it ends.
func (e *Elector) lead(ctx context.Context, l store.Lease) {
	tctx, end := context.WithCancelCause(ctx)
	cur := l // Leading's copy, which renew updates under mu
	e.mu.Lock()
	e.lease, e.end = &cur, end
	e.mu.Unlock()
	m := e.o.Metrics
	m.Leader.Set(1)
	m.Epoch.Set(float64(l.Epoch))
	m.Changes.WithLabelValues("acquired", "").Inc()
	e.log.Info("leading", "epoch", l.Epoch, "ttl", time.Duration(e.o.Lease.TTL))

	done := make(chan error, 1)
	go func(l store.Lease) { done <- e.o.Lead(tctx, l) }(l)
	leadErr, returned := e.renew(tctx, end, &l, done)
	// The term is over: nothing of this replica may act as the leader
	// from now on, even while its components are still returning (one
	// may be waiting on an unreachable journal).
	e.mu.Lock()
	e.lease, e.end = nil, nil
	e.mu.Unlock()
	m.Leader.Set(0)
	if !returned {
		leadErr = <-done
	}
	cause := context.Cause(tctx)
	reason := metrics.LostError
	switch {
	case ctx.Err() != nil:
		reason = metrics.LostShutdown
	case errors.Is(cause, store.ErrFenced):
		reason = metrics.LostFenced
	case errors.Is(cause, errDeadline):
		reason = metrics.LostDeadline
	case leadErr != nil:
		cause = leadErr
	}
	m.Changes.WithLabelValues("lost", reason).Inc()
	e.log.Warn("stopped leading", "epoch", l.Epoch, "reason", reason, "cause", cause)
	if reason != metrics.LostFenced {
		// Let a follower take over now rather than after the ttl.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		if err := e.o.Store.ReleaseLease(rctx, l); err != nil {
			e.log.Warn("could not release the lease; it expires by itself", "err", err)
		}
		cancel()
	}
	if e.o.SteppedDown != nil {
		e.o.SteppedDown()
	}
}

// renew renews l every renew_interval (after a failure, every second or
// so) until the term ends: its context ends (shutdown, or Fenced), Lead
// returns (reported with returned), a renewal is refused, or renew_deadline
// passes without a renewal — the term then ends before the lease can
// expire, so that this replica stops acting before another may start.
func (e *Elector) renew(ctx context.Context, end context.CancelCauseFunc, l *store.Lease, done <-chan error) (error, bool) {
	lo := e.o.Lease
	margin := time.Duration(lo.TTL - lo.RenewDeadline)
	stopAt := l.Deadline.Add(-margin)
	next := time.Now().Add(time.Duration(lo.RenewInterval))
	retry := min(time.Second, time.Duration(lo.RenewInterval))
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		t.Reset(time.Until(earliest(next, stopAt)))
		select {
		case err := <-done:
			end(err)
			return err, true
		case <-ctx.Done():
			return nil, false
		case <-t.C:
		}
		if !time.Now().Before(stopAt) {
			e.log.Error("could not renew the lease in time: stepping down before it can expire", "epoch", l.Epoch,
				"renew_deadline", time.Duration(lo.RenewDeadline))
			end(errDeadline)
			return nil, false
		}
		rctx, cancel := context.WithDeadline(ctx, stopAt)
		renewed, err := e.o.Store.RenewLease(rctx, *l, time.Duration(lo.TTL))
		cancel()
		switch {
		case err == nil:
			*l = renewed
			stopAt = renewed.Deadline.Add(-margin)
			next = time.Now().Add(time.Duration(lo.RenewInterval))
			e.mu.Lock()
			if e.lease != nil {
				*e.lease = renewed
			}
			e.mu.Unlock()
		case errors.Is(err, store.ErrFenced):
			e.o.Metrics.RenewFailures.Inc()
			end(err)
			return nil, false
		case ctx.Err() != nil:
			return nil, false
		default:
			e.o.Metrics.RenewFailures.Inc()
			e.log.Warn("renewing the lease failed; retrying until the renew deadline", "epoch", l.Epoch, "deadline", stopAt, "err", err)
			next = time.Now().Add(retry)
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

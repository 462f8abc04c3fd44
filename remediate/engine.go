// Package remediate maps detections to remediation policies and runs their
// steps under guardrails: one run per (policy, target), cooldowns, max_runs
// windows, a global destructive budget, a kill switch, dry runs and human
// approvals. Every decision is journaled in the store before it takes
// effect, so a restart resets nothing and no step runs twice by accident.
package remediate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// Errors returned by Decide, SetPaused and the queries. Callers test them
// with errors.Is; the wrapped message says what happened.
var (
	// ErrNotFound means the approval or incident does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the approval is no longer pending: decided,
	// expired or obsolete (its alert resolved), or it no longer shows
	// what the approver saw.
	ErrConflict = errors.New("conflict")
	// ErrForbidden means the caller may not make this decision.
	ErrForbidden = errors.New("forbidden")
)

// Options configure an Engine.
type Options struct {
	Store *store.Store
	// Config is a loaded configuration, or one built in code and passed
	// through config.ApplyDefaults: the engine has no defaults of its own.
	Config  *config.Config
	Actions map[string]action.Action // built by the caller from action.Registry
	// Verifier answers steps' verify hooks; when nil a step with a verify
	// hook fails with a clear reason.
	Verifier detect.Verifier
	Metrics  *metrics.Remediation
	Logger   *slog.Logger
	// DryRun is the global --dry-run flag, OR-ed with guardrails.dry_run.
	DryRun bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnResolved, when set, is called after an incident's resolution is
	// committed (recovery-duration metrics). It must not block.
	OnResolved func(store.Incident)
	// OnFenced, when set, is called when a write fenced by lease was
	// refused (store.ErrFenced): another replica leads. It must not block.
	OnFenced func(lease store.Lease, err error)
}

// Engine is the remediation engine: an outbox processor and an approval
// expiry loop around the journal, and a work queue of runs served by a
// fixed set of workers.
type Engine struct {
	store    *store.Store
	cfg      *config.Config
	actions  map[string]action.Action
	verifier detect.Verifier
	m        *metrics.Remediation
	log      *slog.Logger
	now      func() time.Time

	dryRun    bool
	dryRunWhy string
	policies  []*policy

	// tick is how often the loops look at the journal without being
	// woken, and how often verification polls.
	tick time.Duration
	// approvalSettle is how long an approved step waits before it starts.
	approvalSettle time.Duration

	wake chan struct{}
	// outboxMu serialises processing of the outbox (the processor loop,
	// and the catch-up before a decision or a gated or destructive step);
	// failures counts, under it, failed attempts by outbox seq.
	outboxMu sync.Mutex
	failures map[uint64]int
	// onResolved is called after an incident's resolution is committed.
	onResolved func(store.Incident)

	// term is the leadership term the engine serves, nil while it does
	// not lead (terms.go).
	term atomic.Pointer[term]
	// stepCtx is the context of steps' actions: steps outlive the term
	// that started them, and end at Shutdown.
	stepCtx   context.Context
	stopSteps context.CancelFunc
	onFenced  func(store.Lease, error)
	// watchdogs recognises the notifications of dead-man switches.
	watchdogs *detect.Watchdogs
	// corroborating is whether a policy needs corroboration: the journal
	// then indexes firing incidents (corroborate.go).
	corroborating bool
	// executing is the runs whose step runs in this process, and
	// unrecorded the outcomes of steps whose completion could not be
	// journaled yet (retried from the queue).
	mu         sync.Mutex
	executing  map[string]bool
	unrecorded map[string]*outcome
	// held are approved runs and when they may start (approvalSettle).
	held map[string]time.Time
	// stops are the runs to stop before their next step, and
	// correlations the drills claiming new incidents (requested.go).
	stops        map[string]*block
	correlations []*Correlation

	busy atomic.Int32 // len(executing), read without mu
	wg   sync.WaitGroup

	writer writer
}

// settle is how long intake must stay quiet before the engine reads the
// outbox, and maxDefer how long a burst may put processing off.
const (
	settle   = 20 * time.Millisecond
	maxDefer = time.Second
)

// settleBurst waits, after a wake, until intake has been quiet for settle
// or maxDefer has passed, so that a burst of webhooks is processed in a
// few transactions after it, not one per webhook during it: intake, which
// must fsync before it answers, keeps the CPU and the disk, and alerts are
// safe in the outbox meanwhile. It reports false when ctx ended.
func (e *Engine) settleBurst(ctx context.Context) bool {
	deadline := time.Now().Add(maxDefer)
	t := time.NewTimer(settle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		select {
		case <-e.wake:
			if time.Now().Before(deadline) {
				t.Reset(settle)
				continue
			}
		default:
		}
		return true
	}
}

// New validates the policies against the actions and builds an Engine.
// It compiles every matcher and parses every parameter template, so that a
// bad policy fails here rather than when an alert arrives.
func New(o Options) (*Engine, error) {
	if o.Store == nil {
		return nil, errors.New("remediate: no store")
	}
	if o.Config == nil {
		return nil, errors.New("remediate: no config")
	}
	e := &Engine{
		store: o.Store, cfg: o.Config, actions: o.Actions, verifier: o.Verifier,
		m: o.Metrics, log: o.Logger, now: o.Now, tick: time.Second, approvalSettle: approvalSettle,
		wake: make(chan struct{}, 1), failures: map[uint64]int{}, onResolved: o.OnResolved, onFenced: o.OnFenced,
		executing: map[string]bool{}, unrecorded: map[string]*outcome{}, held: map[string]time.Time{}, stops: map[string]*block{},
	}
	if e.m == nil {
		e.m = metrics.NewRemediation(prometheus.NewRegistry())
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.stepCtx, e.stopSteps = context.WithCancel(context.Background())
	switch {
	case o.DryRun:
		e.dryRun, e.dryRunWhy = true, "dry run: drguard started with --dry-run"
	case o.Config.Guardrails.DryRun:
		e.dryRun, e.dryRunWhy = true, "dry run: guardrails.dry_run is on"
	}
	var errs []error
	wd, err := detect.CompileWatchdogs(o.Config.Watchdogs)
	if err != nil {
		errs = append(errs, err)
	}
	e.watchdogs = wd
	for i := range o.Config.Policies {
		p, err := compilePolicy(o.Config.Policies[i], o.Config.Auth.FourEyes, o.Actions)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.policies = append(e.policies, p)
		e.corroborating = e.corroborating || p.requires != nil
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}

// Wake tells the engine that the journal changed (new alerts in the
// outbox). It never blocks.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// cycle is one pass of the engine's loops. Errors are logged and retried
// on the next pass: the journal holds all the state.
func (e *Engine) cycle(ctx context.Context, tm *term) {
	if ctx.Err() != nil {
		return
	}
	if err := e.processOutbox(ctx); err != nil {
		e.log.Error("processing the alert outbox failed; will retry", "err", err)
	}
	if err := e.expireApprovals(); err != nil {
		e.log.Error("expiring approvals failed; will retry", "err", err)
	}
	if err := e.expireAwaiting(); err != nil {
		e.log.Error("ending waits for corroboration failed; will retry", "err", err)
	}
	if err := e.resync(tm); err != nil {
		e.log.Error("reading active runs failed; will retry", "err", err)
	}
}

// PendingApprovals lists the approvals waiting for a decision that have
// not expired, oldest first.
func (e *Engine) PendingApprovals() ([]store.Approval, error) {
	now := e.now()
	var out []store.Approval
	err := e.store.View(func(tx *store.Tx) error {
		all, err := pendingApprovals(tx)
		for _, a := range all {
			if now.Before(a.ExpiresAt) {
				out = append(out, a)
			}
		}
		return err
	})
	return out, err
}

// Incidents lists every incident, newest first.
func (e *Engine) Incidents() ([]store.Incident, error) {
	var out []store.Incident
	err := e.store.View(func(tx *store.Tx) error {
		return tx.ForEachIncident(func(in store.Incident) error {
			out = append(out, in)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].FirstSeen.After(out[j].FirstSeen) })
	return out, err
}

// Incident returns one incident with its runs in creation order.
func (e *Engine) Incident(id string) (store.Incident, []store.Run, error) {
	var in store.Incident
	var runs []store.Run
	err := e.store.View(func(tx *store.Tx) error {
		var err error
		in, err = tx.Incident(id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: incident %q", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		runs = runs[:0]
		for _, rid := range in.RunIDs {
			r, err := tx.Run(rid)
			if err != nil {
				return fmt.Errorf("run %s of incident %s: %w", rid, id, err)
			}
			runs = append(runs, r)
		}
		return nil
	})
	return in, runs, err
}

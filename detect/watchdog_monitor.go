package detect

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// Bounds on how often the monitor looks at the watchdogs: a tenth of the
// shortest missing_after.
const (
	minWatchdogTick = 100 * time.Millisecond
	maxWatchdogTick = 10 * time.Second
)

// WatchdogMonitorOptions configure a WatchdogMonitor.
type WatchdogMonitorOptions struct {
	Watchdogs *Watchdogs
	// Store is read for the watchdogs' state.
	Store *store.Store
	// Journal writes the state (the leader's fenced journal).
	Journal interface {
		Update(fn func(*store.Tx) error) error
	}
	// Emit hands detections to the outbox.
	Emit    EmitFunc
	Metrics *metrics.Watchdogs
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// WatchdogMonitor raises a detection for each watchdog that has not
// arrived for its missing_after, and resolves it when the watchdog is
// back. Its state lives in the journal (when each watchdog was last seen,
// since when it was expected, the start of its open detection), so that
// whichever replica leads continues where the last one stopped: the same
// silence always yields the same detection (fingerprint and start), and a
// new leader resolves what an old one raised. Run it on the leader only.
type WatchdogMonitor struct {
	o    WatchdogMonitorOptions
	log  *slog.Logger
	now  func() time.Time
	tick time.Duration
}

// NewWatchdogMonitor checks the options.
func NewWatchdogMonitor(o WatchdogMonitorOptions) (*WatchdogMonitor, error) {
	if o.Store == nil || o.Journal == nil || o.Emit == nil {
		return nil, errors.New("watchdog monitor: a store, a journal and Emit are required")
	}
	m := &WatchdogMonitor{o: o, log: o.Logger, now: o.Now, tick: maxWatchdogTick}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if o.Watchdogs != nil {
		for _, c := range o.Watchdogs.list {
			m.tick = min(m.tick, max(time.Duration(c.cfg.MissingAfter)/10, minWatchdogTick))
		}
	}
	return m, nil
}

// Run checks the watchdogs every tick until ctx ends. It returns nil.
func (m *WatchdogMonitor) Run(ctx context.Context) error {
	if m.o.Watchdogs.Len() == 0 {
		<-ctx.Done()
		return nil
	}
	// emitted is the start of the missing detection emitted in this term,
	// by watchdog: a new term emits an open one once more (a repeat).
	emitted := map[string]time.Time{}
	t := time.NewTicker(m.tick)
	defer t.Stop()
	for {
		for _, c := range m.o.Watchdogs.list {
			if err := m.check(ctx, c, emitted); err != nil && ctx.Err() == nil {
				m.log.Error("checking a watchdog failed; will retry", "watchdog", c.cfg.Name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// check looks at one watchdog and raises or resolves its detection.
func (m *WatchdogMonitor) check(ctx context.Context, c watchdog, emitted map[string]time.Time) error {
	name, now := c.cfg.Name, m.now().UTC()
	var st store.WatchdogState
	if err := m.o.Store.View(func(tx *store.Tx) (err error) { st, err = tx.Watchdog(name); return err }); err != nil {
		return err
	}
	if st.Since.IsZero() {
		// Expect it from now: one never seen is missing after missing_after.
		return m.o.Journal.Update(func(tx *store.Tx) error {
			cur, err := tx.Watchdog(name)
			if err != nil || !cur.Since.IsZero() {
				return err
			}
			cur.Since = now
			return tx.PutWatchdog(cur)
		})
	}
	m.report(c, st)
	silentFrom := st.LastSeen
	if st.Since.After(silentFrom) {
		silentFrom = st.Since
	}
	switch {
	case st.Missing.IsZero() && now.Sub(silentFrom) >= time.Duration(c.cfg.MissingAfter):
		// Journal the silence first: whoever leads next resolves it.
		err := m.o.Journal.Update(func(tx *store.Tx) error {
			cur, err := tx.Watchdog(name)
			if err != nil || !cur.Missing.IsZero() || !cur.LastSeen.Equal(st.LastSeen) {
				return err
			}
			cur.Missing = silentFrom
			return tx.PutWatchdog(cur)
		})
		if err != nil {
			return err
		}
		m.log.Warn("watchdog missing", "watchdog", name, "since", silentFrom, "missing_after", time.Duration(c.cfg.MissingAfter))
		return m.emit(ctx, c.missing(silentFrom, time.Time{}), emitted, name, silentFrom)
	case !st.Missing.IsZero() && st.LastSeen.After(st.Missing):
		if err := m.o.Emit(ctx, c.missing(st.Missing, st.LastSeen)); err != nil {
			return err
		}
		delete(emitted, name)
		m.log.Info("watchdog back", "watchdog", name, "seen", st.LastSeen, "missing_since", st.Missing)
		return m.o.Journal.Update(func(tx *store.Tx) error {
			cur, err := tx.Watchdog(name)
			if err != nil || !cur.Missing.Equal(st.Missing) {
				return err
			}
			cur.Missing = time.Time{}
			return tx.PutWatchdog(cur)
		})
	case !st.Missing.IsZero() && !emitted[name].Equal(st.Missing):
		return m.emit(ctx, c.missing(st.Missing, time.Time{}), emitted, name, st.Missing)
	}
	return nil
}

func (m *WatchdogMonitor) emit(ctx context.Context, d Detection, emitted map[string]time.Time, name string, since time.Time) error {
	if err := m.o.Emit(ctx, d); err != nil {
		return err
	}
	emitted[name] = since
	return nil
}

// report exports a watchdog's state.
func (m *WatchdogMonitor) report(c watchdog, st store.WatchdogState) {
	if m.o.Metrics == nil {
		return
	}
	seen := 0.0
	if !st.LastSeen.IsZero() {
		seen = float64(st.LastSeen.UnixNano()) / 1e9
	}
	missing := 0.0
	if !st.Missing.IsZero() {
		missing = 1
	}
	m.o.Metrics.LastSeen.WithLabelValues(c.cfg.Name).Set(seen)
	m.o.Metrics.Missing.WithLabelValues(c.cfg.Name).Set(missing)
}

package remediate

import (
	"context"
	"sync/atomic"
	"time"
)

// The status updater delivers through each notifier on its own: every
// tick reads the journal once, then each notifier that is not still busy
// with earlier deliveries gets a goroutine that sends it what is due,
// incident by incident. A hung relay or webhook holds up only its own
// deliveries — each bounded by the notifier's timeout — never another
// notifier's, nor the next tick; its due notices wait until it is free.

// Run sends what is due every Tick until ctx ends, then waits for the
// deliveries in flight and returns nil.
func (u *StatusUpdater) Run(ctx context.Context) error {
	if len(u.notifiers) == 0 {
		<-ctx.Done()
		return nil
	}
	defer u.wg.Wait()
	t := time.NewTicker(u.o.Tick)
	defer t.Stop()
	for {
		u.dispatch(ctx, nil)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once examines the journal once, sends every notice that is due through
// every notifier not busy with earlier deliveries (each notifier
// concurrently), and waits for them. It returns how many it sent.
func (u *StatusUpdater) Once(ctx context.Context) int {
	var sent atomic.Int64
	u.dispatch(ctx, &sent)
	u.wg.Wait()
	return int(sent.Load())
}

// dispatch claims the idle notifiers, reads the journal, and starts the
// deliveries due through each claimed notifier; sent, when not nil,
// counts the notices sent. Notifiers are claimed before the journal is
// read, so that no delivery works from a reading older than the last
// delivery journaled through its notifier.
func (u *StatusUpdater) dispatch(ctx context.Context, sent *atomic.Int64) {
	idle := u.claimIdle()
	if len(idle) == 0 {
		return
	}
	now := u.o.Now()
	views, err := u.load(now)
	if err != nil {
		u.log.Error("status updates: reading incidents failed; will retry", "err", err)
		for _, n := range idle {
			u.release(n.cfg.Name)
		}
		return
	}
	for _, n := range idle {
		var due []incidentView
		for _, v := range views {
			if u.due(v, n, now) {
				due = append(due, v)
			}
		}
		if len(due) == 0 {
			u.release(n.cfg.Name)
			continue
		}
		u.wg.Go(func() {
			defer u.release(n.cfg.Name)
			for _, v := range due {
				if ctx.Err() != nil {
					return
				}
				if u.deliver(ctx, v, n, now) && sent != nil {
					sent.Add(1)
				}
			}
		})
	}
}

// claimIdle marks every notifier without deliveries in flight busy and
// returns them.
func (u *StatusUpdater) claimIdle() []scheduledNotifier {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []scheduledNotifier
	for _, n := range u.notifiers {
		if !u.busy[n.cfg.Name] {
			u.busy[n.cfg.Name] = true
			out = append(out, n)
		}
	}
	return out
}

// release marks a notifier idle.
func (u *StatusUpdater) release(name string) {
	u.mu.Lock()
	delete(u.busy, name)
	u.mu.Unlock()
}

package backup

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// schedState is what the scheduler knows of one backup, rebuilt from
// object storage by Refresh.
type schedState struct {
	known       bool      // read from storage at least once
	lastBackup  time.Time // end of the newest manifest
	lastTest    time.Time // end of the newest restore test, passed or not
	hasBackups  bool
	backupRetry time.Time // not before this after a failed backup
	testRetry   time.Time // not before this after a failed restore test
}

// NewScheduler is New under the name the daemon's wiring looks for: the
// returned Service's Run is the scheduler.
func NewScheduler(o Options) (*Service, error) { return New(o) }

// Run is the backup scheduler. Each backup is scheduled on its own: a
// goroutine per backup reads its catalog from object storage when a run is
// due (so a restart neither resets freshness nor re-runs a backup that is
// not due), takes the backup (the newest manifest's end plus the interval,
// or at once when there is none) and applies retention after it; another
// refreshes its freshness and verification state every RefreshInterval;
// each restore test has its own too. Every catalog read has the backup's
// catalog_timeout, so a destination that hangs delays nothing but its own
// backup, and a destination that cannot be read makes the due run a
// failure (counted and journaled), retried after a delay. Run it on one
// drguard only (the leader). It returns nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	s.initMetrics()
	var wg sync.WaitGroup
	for _, b := range s.cfg.Backups {
		wg.Go(func() {
			s.loop(ctx, func() time.Time { return s.backupDue(b) }, func() { s.scheduledBackup(ctx, b) })
		})
		wg.Go(func() { s.refreshLoop(ctx, b) })
	}
	for _, rt := range s.cfg.RestoreTests {
		wg.Go(func() {
			s.loop(ctx, func() time.Time { return s.testDue(rt) }, func() { s.scheduledTest(ctx, rt) })
		})
	}
	wg.Wait()
	return nil
}

// refreshLoop re-reads one backup's catalog every refresh interval until
// ctx ends. The first read is the scheduler's, when the backup is first
// due (at start, since nothing is known yet).
func (s *Service) refreshLoop(ctx context.Context, b config.Backup) {
	t := time.NewTicker(s.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.refreshBackup(ctx, b); err != nil && ctx.Err() == nil {
			s.log.Warn("cannot read backups from object storage", "backup", b.Name, "destination", b.Destination, "err", err)
		}
	}
}

// loop runs work whenever due() has passed, re-reading due whenever the
// scheduler's state changes (a restore test becomes due as soon as its
// backup's first catalog read finds a backup) and at least every refresh
// interval (a backup taken by the CLI or an action moves it).
func (s *Service) loop(ctx context.Context, due func() time.Time, work func()) {
	for {
		changed := s.changes()
		next := due()
		wait := s.refresh
		if !next.IsZero() {
			wait = min(max(next.Sub(s.now()), 0), s.refresh)
		}
		if !next.IsZero() && wait == 0 {
			work()
			if ctx.Err() != nil {
				return
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
			t.Stop()
		case <-t.C:
		}
	}
}

// changes returns a channel closed at the next change of the scheduler's
// state.
func (s *Service) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// stateChanged wakes every loop waiting on changes; s.mu must be held.
func (s *Service) stateChanged() {
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// backupDue returns when b's next backup is due. While its state is
// unknown (its catalog was never read) it is due now, or when the retry
// after a failed read is.
func (s *Service) backupDue(b config.Backup) time.Time {
	s.mu.Lock()
	st := *s.state(b.Name)
	s.mu.Unlock()
	if !st.known {
		return later(s.now(), st.backupRetry)
	}
	next := st.lastBackup.Add(time.Duration(b.Interval))
	if st.backupRetry.After(next) {
		next = st.backupRetry
	}
	return next
}

// testDue returns when rt is next due; zero while its backup has none.
func (s *Service) testDue(rt config.RestoreTest) time.Time {
	s.mu.Lock()
	st := *s.state(rt.Backup)
	s.mu.Unlock()
	if !st.known || !st.hasBackups {
		return time.Time{}
	}
	next := st.lastTest.Add(time.Duration(rt.Interval))
	if st.testRetry.After(next) {
		next = st.testRetry
	}
	return next
}

// retryDelay is how long to wait after a failure: a sixth of the interval,
// between 1 and 30 minutes.
func retryDelay(interval time.Duration) time.Duration {
	return min(max(interval/6, time.Minute), 30*time.Minute)
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// scheduledBackup reads the catalog of a due backup, takes the backup if
// it is still due (one taken by the CLI or an action moves it), then
// applies retention. A catalog that cannot be read fails the run.
func (s *Service) scheduledBackup(ctx context.Context, b config.Backup) {
	start := s.now().UTC()
	if err := s.refreshBackup(ctx, b); err != nil {
		if ctx.Err() == nil {
			s.unreachable(b, start, err)
		}
		return
	}
	if s.backupDue(b).After(s.now()) {
		return
	}
	m, err := s.Backup(ctx, b.Name, TriggerSchedule)
	s.mu.Lock()
	st := s.state(b.Name)
	if err != nil {
		st.backupRetry = s.now().Add(retryDelay(time.Duration(b.Interval)))
	} else {
		st.lastBackup, st.hasBackups, st.backupRetry = m.End, true, time.Time{}
	}
	s.stateChanged()
	s.mu.Unlock()
	if err != nil || s.journal == nil {
		return
	}
	if _, _, err := s.Prune(ctx, b.Name, false); err != nil {
		s.log.Error("retention failed", "backup", b.Name, "err", err)
	}
}

// scheduledTest runs a due restore test.
func (s *Service) scheduledTest(ctx context.Context, rt config.RestoreTest) {
	v, err := s.RestoreTest(ctx, rt)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(rt.Backup)
	if !v.End.IsZero() {
		st.lastTest = v.End
	}
	st.testRetry = time.Time{}
	if err != nil {
		st.testRetry = s.now().Add(retryDelay(time.Duration(rt.Interval)))
	}
	s.stateChanged()
}

// state returns the scheduler state of a backup; s.mu must be held.
func (s *Service) state(name string) *schedState {
	if s.sched == nil {
		s.sched = map[string]*schedState{}
	}
	st := s.sched[name]
	if st == nil {
		st = &schedState{}
		s.sched[name] = st
	}
	return st
}

// Refresh re-reads every backup's manifests and restore-test results from
// object storage and reports them, the backups concurrently, each read
// bounded by its catalog_timeout. Errors are logged; the previous state
// stays.
func (s *Service) Refresh(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range s.cfg.Backups {
		wg.Go(func() {
			if err := s.refreshBackup(ctx, b); err != nil {
				s.log.Warn("cannot read backups from object storage", "backup", b.Name, "destination", b.Destination, "err", err)
			}
		})
	}
	wg.Wait()
}

// catalogTimeout bounds one read of b's catalog.
func catalogTimeout(b config.Backup) time.Duration {
	if b.CatalogTimeout > 0 {
		return time.Duration(b.CatalogTimeout)
	}
	return time.Duration(config.DefaultCatalogTimeout)
}

// refreshBackup reads one backup's catalog within its catalog timeout.
func (s *Service) refreshBackup(ctx context.Context, b config.Backup) error {
	limit := catalogTimeout(b)
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	o, err := s.objects(rctx, b)
	if err != nil {
		return err
	}
	cat, err := readCatalog(rctx, o, &s.cache)
	if err != nil {
		if ctx.Err() == nil && rctx.Err() != nil {
			return fmt.Errorf("destination %s did not answer within %s (catalog_timeout)", b.Destination, limit)
		}
		return fmt.Errorf("destination %s: %w", b.Destination, err)
	}
	latest, ok := cat.latest()
	if ok {
		s.noteBackup(b, latest)
	}
	for _, v := range cat.Verifications {
		s.noteVerification(b, v)
	}
	last, _ := cat.lastVerification()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(b.Name)
	st.known, st.hasBackups = true, ok
	if latest.End.After(st.lastBackup) {
		st.lastBackup = latest.End
	}
	if last.End.After(st.lastTest) {
		st.lastTest = last.End
	}
	s.stateChanged()
	return nil
}

// unreachable records a due backup that could not start because its
// destination's catalog could not be read: a failed run, counted in
// drguard_backup_runs_total{result="failure"} and journaled with the
// reason, retried after retryDelay.
func (s *Service) unreachable(b config.Backup, start time.Time, err error) {
	now := s.now().UTC()
	s.mu.Lock()
	s.state(b.Name).backupRetry = now.Add(retryDelay(time.Duration(b.Interval)))
	s.stateChanged()
	s.mu.Unlock()
	run := store.BackupRun{Backup: b.Name, Target: b.Target, Service: b.Service, Trigger: TriggerSchedule,
		Start: start, End: now, Result: store.BackupFailed, Error: "cannot read the destination's catalog: " + err.Error()}
	if mt := s.metrics; mt != nil {
		mt.Runs.WithLabelValues(b.Service, b.Target, metrics.BackupFailure).Inc()
	}
	s.log.Error("backup failed: its destination cannot be read", "backup", b.Name, "target", b.Target, "err", err,
		"retry_in", retryDelay(time.Duration(b.Interval)))
	s.record("backup run", func(tx *store.Tx) error { return tx.PutBackupRun(&run) })
}

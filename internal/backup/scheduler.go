package backup

import (
	"context"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
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

// Run is the backup scheduler. It rebuilds its state from object storage
// first (so a restart neither resets freshness nor re-runs a backup that is
// not due), then takes each backup when due (the newest manifest's end plus
// the interval, or at once when there is none), applies retention after
// each, runs each restore test when due, and refreshes freshness and
// verification state every RefreshInterval, until ctx ends. Run
// it on one drguard only (the leader). It returns nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	s.initMetrics()
	s.Refresh(ctx)
	var wg sync.WaitGroup
	for _, b := range s.cfg.Backups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, func() time.Time { return s.backupDue(b) }, func() { s.scheduledBackup(ctx, b) })
		}()
	}
	for _, rt := range s.cfg.RestoreTests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, func() time.Time { return s.testDue(rt) }, func() { s.scheduledTest(ctx, rt) })
		}()
	}
	t := time.NewTicker(s.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			s.Refresh(ctx)
		}
	}
}

// loop runs work whenever due() has passed, re-reading due at least every
// refresh interval (a backup taken by the CLI or an action moves it).
func (s *Service) loop(ctx context.Context, due func() time.Time, work func()) {
	for {
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
		case <-t.C:
		}
	}
}

// backupDue returns when b's next backup is due; zero while its state is
// unknown (storage unreadable).
func (s *Service) backupDue(b config.Backup) time.Time {
	s.mu.Lock()
	st := *s.state(b.Name)
	s.mu.Unlock()
	if !st.known {
		return time.Time{}
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

// scheduledBackup takes a due backup, then applies retention.
func (s *Service) scheduledBackup(ctx context.Context, b config.Backup) {
	m, err := s.Backup(ctx, b.Name, TriggerSchedule)
	s.mu.Lock()
	st := s.state(b.Name)
	if err != nil {
		st.backupRetry = s.now().Add(retryDelay(time.Duration(b.Interval)))
	} else {
		st.lastBackup, st.hasBackups, st.backupRetry = m.End, true, time.Time{}
	}
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
// object storage and reports them. Errors are logged; the previous state
// stays.
func (s *Service) Refresh(ctx context.Context) {
	for _, b := range s.cfg.Backups {
		if err := s.refreshBackup(ctx, b); err != nil {
			s.log.Warn("cannot read backups from object storage", "backup", b.Name, "err", err)
		}
	}
}

// refreshBackup reads one backup's catalog.
func (s *Service) refreshBackup(ctx context.Context, b config.Backup) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	o, err := s.objects(ctx, b)
	if err != nil {
		return err
	}
	cat, err := readCatalog(ctx, o, &s.cache)
	if err != nil {
		return err
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
	return nil
}

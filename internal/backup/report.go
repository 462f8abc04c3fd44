package backup

import (
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/metrics"
)

// This file holds what the service reports: backup and restore-test facts,
// to its metrics and to the recovery objectives (metrics.Objectives), which
// compute the RPO exposure and the RTO estimate from them.

// noteBackup updates the freshness metrics from a backup's manifest.
func (s *Service) noteBackup(b config.Backup, m Manifest) {
	mt := s.metrics
	if mt == nil {
		return
	}
	end := float64(m.End.UnixNano()) / 1e9
	mt.LastSuccess.WithLabelValues(b.Service, b.Target).Set(end)
	mt.Age.WithLabelValues(b.Service, b.Target).Set(max(s.now().Sub(m.End).Seconds(), 0))
	mt.Size.WithLabelValues(b.Service, b.Target).Set(float64(m.Sizes.Stored))
	mt.Duration.WithLabelValues(b.Service, b.Target).Set(m.End.Sub(m.Start).Seconds())
}

// noteVerification reports a passed restore test of backup b to the
// objectives, and sets the restore-test metrics when it is the backup's
// newest (Refresh reports every test in storage, in no particular order).
func (s *Service) noteVerification(b config.Backup, v Verification) {
	if !v.OK {
		return
	}
	if s.objectives != nil {
		s.objectives.ObserveRestoreTest(metrics.RestoreTest{Service: b.Service, Backup: b.Name,
			End: v.End, DurationSeconds: v.DurationSeconds, RecoveryPoint: v.RecoveryPoint})
	}
	s.mu.Lock()
	newer := v.End.After(s.lastTest[b.Name])
	if newer {
		s.lastTest[b.Name] = v.End
	}
	s.mu.Unlock()
	mt := s.metrics
	if mt == nil || !newer {
		return
	}
	mt.RestoreTestLastSuccess.WithLabelValues(b.Service, b.Target).Set(float64(v.End.UnixNano()) / 1e9)
	mt.RestoreTestDuration.WithLabelValues(b.Service, b.Target).Set(v.DurationSeconds)
	mt.RestoreTestRecoveryPoint.WithLabelValues(b.Service, b.Target).Set(float64(v.RecoveryPoint.UnixNano()) / 1e9)
}

// initMetrics exports the configured intervals, and what has not happened
// yet as such, so that rules see "never" rather than nothing: no runs so
// far, never verified.
func (s *Service) initMetrics() {
	mt := s.metrics
	if mt == nil {
		return
	}
	for _, b := range s.cfg.Backups {
		mt.ExpectedInterval.WithLabelValues(b.Service, b.Target).Set(time.Duration(b.Interval).Seconds())
		for _, result := range []string{metrics.BackupSuccess, metrics.BackupFailure} {
			mt.Runs.WithLabelValues(b.Service, b.Target, result).Add(0)
			mt.RestoreTestRuns.WithLabelValues(b.Service, b.Target, result).Add(0)
		}
		mt.RestoreTestLastSuccess.WithLabelValues(b.Service, b.Target).Add(0)
	}
}

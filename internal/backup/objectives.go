package backup

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// Recovery sources as exported in drguard_rpo_exposure_seconds{source}.
const (
	SourceBackup  = "backup"
	SourceReplica = config.RecoverySourceReplica
	SourcePITR    = config.RecoverySourcePITR
)

// recoveryState holds, per service, the newest recoverable point of each
// recovery source and the last restore test, from which exposures and the
// RTO estimate are computed.
type recoveryState struct {
	mu sync.Mutex
	// points[service][source][name] is a recovery point: name is the
	// backup, replica target or RDS instance.
	points map[string]map[string]map[string]time.Time
	// lastTest[service] and byBackup[backup] are the newest successful
	// restore tests.
	lastTest map[string]Verification
	byBackup map[string]Verification
}

func (r *recoveryState) init() {
	r.points = map[string]map[string]map[string]time.Time{}
	r.lastTest = map[string]Verification{}
	r.byBackup = map[string]Verification{}
}

// set records a recovery point, keeping the newest per name unless replace
// says a source may move back (a replica that fell behind).
func (r *recoveryState) set(service, source, name string, t time.Time, replace bool) {
	if service == "" || t.IsZero() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.points[service] == nil {
		r.points[service] = map[string]map[string]time.Time{}
	}
	if r.points[service][source] == nil {
		r.points[service][source] = map[string]time.Time{}
	}
	if old, ok := r.points[service][source][name]; ok && !replace && !t.After(old) {
		return
	}
	r.points[service][source][name] = t
}

// SetRecoveryPoint records that service can be recovered from source
// (backup, replica or pitr) up to t; name tells apart several sources of
// one kind. The exposure exported is now minus the newest point per source.
func (s *Service) SetRecoveryPoint(service, source, name string, t time.Time) {
	s.recovery.set(service, source, name, t, true)
}

// ObserveReplica records that the streaming replica target can be
// recovered from up to point, for every service that names it as a
// replica recovery source. The daemon feeds it from the replica's
// postgres_replication probe (probe.ReplicaRecoveryPoint), so backup does
// not depend on the probes' results. A replica whose probe stops
// reporting keeps its last point, so its exposure grows.
func (s *Service) ObserveReplica(target string, point time.Time) {
	for svc, o := range s.cfg.Objectives {
		for _, src := range o.RecoverySources {
			if src.Type == config.RecoverySourceReplica && src.Target == target {
				s.SetRecoveryPoint(svc, SourceReplica, src.Target, point)
			}
		}
	}
}

// ObserveRecovery records how long an incident took from detection to
// resolution, in drguard_recovery_duration_seconds{service,scenario}.
func (s *Service) ObserveRecovery(service, scenario string, d time.Duration) {
	if s.metrics == nil || d < 0 {
		return
	}
	s.metrics.RecoveryDuration.WithLabelValues(service, scenario).Observe(d.Seconds())
}

// ObserveIncident records a resolved incident's recovery duration, from
// its detection (the alert's start, else when drguard first saw it) to its
// resolution, labelled with the incident's service and scenario labels.
// It returns false, recording nothing, for an incident not resolved.
func (s *Service) ObserveIncident(in store.Incident) bool {
	if in.State != store.IncidentResolved || in.ResolvedAt.IsZero() {
		return false
	}
	detected := in.StartsAt
	if detected.IsZero() || (!in.FirstSeen.IsZero() && in.FirstSeen.Before(detected)) {
		detected = in.FirstSeen
	}
	if detected.IsZero() {
		return false
	}
	s.ObserveRecovery(in.Labels["service"], in.Labels["scenario"], in.ResolvedAt.Sub(detected))
	return true
}

// exposures computes drguard_rpo_exposure_seconds at scrape time: per
// service and source, now minus the newest recovery point.
func (s *Service) exposures() []metrics.Exposure {
	now := s.now()
	s.recovery.mu.Lock()
	defer s.recovery.mu.Unlock()
	var out []metrics.Exposure
	for svc, sources := range s.recovery.points {
		for src, byName := range sources {
			var newest time.Time
			for _, t := range byName {
				if t.After(newest) {
					newest = t
				}
			}
			out = append(out, metrics.Exposure{Service: svc, Source: src, Seconds: max(now.Sub(newest).Seconds(), 0)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Source < out[j].Source
	})
	return out
}

// Exposure returns the current exposure of a service's recovery source,
// and whether it is known.
func (s *Service) Exposure(service, source string) (time.Duration, bool) {
	for _, e := range s.exposures() {
		if e.Service == service && e.Source == source {
			return time.Duration(e.Seconds * float64(time.Second)), true
		}
	}
	return 0, false
}

// RTOEstimate returns the last successful restore test's duration plus the
// service's rto_overhead, and whether a restore test has succeeded.
func (s *Service) RTOEstimate(service string) (time.Duration, bool) {
	s.recovery.mu.Lock()
	v, ok := s.recovery.lastTest[service]
	s.recovery.mu.Unlock()
	if !ok {
		return 0, false
	}
	return time.Duration(v.DurationSeconds*float64(time.Second)) + time.Duration(s.cfg.Objectives[service].RTOOverhead), true
}

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

// noteVerification updates the recovery state and metrics from a passed
// restore test of backup b's manifest m.
func (s *Service) noteVerification(b config.Backup, v Verification) {
	if !v.OK {
		return
	}
	s.recovery.set(b.Service, SourceBackup, b.Name, v.RecoveryPoint, false)
	s.recovery.mu.Lock()
	if v.End.After(s.recovery.lastTest[b.Service].End) {
		s.recovery.lastTest[b.Service] = v
	}
	newer := v.End.After(s.recovery.byBackup[b.Name].End)
	if newer {
		s.recovery.byBackup[b.Name] = v
	}
	s.recovery.mu.Unlock()
	mt := s.metrics
	if mt == nil || !newer {
		return
	}
	mt.RestoreTestLastSuccess.WithLabelValues(b.Service, b.Target).Set(float64(v.End.UnixNano()) / 1e9)
	mt.RestoreTestDuration.WithLabelValues(b.Service, b.Target).Set(v.DurationSeconds)
	mt.RestoreTestRecoveryPoint.WithLabelValues(b.Service, b.Target).Set(float64(v.RecoveryPoint.UnixNano()) / 1e9)
	if est, ok := s.RTOEstimate(b.Service); ok {
		mt.RTOEstimate.WithLabelValues(b.Service).Set(est.Seconds())
	}
}

// setObjectiveMetrics exports the configured objectives and intervals.
func (s *Service) setObjectiveMetrics() {
	mt := s.metrics
	if mt == nil {
		return
	}
	for svc, o := range s.cfg.Objectives {
		mt.RPOObjective.WithLabelValues(svc).Set(time.Duration(o.RPO).Seconds())
		mt.RTOObjective.WithLabelValues(svc).Set(time.Duration(o.RTO).Seconds())
	}
	for _, b := range s.cfg.Backups {
		mt.ExpectedInterval.WithLabelValues(b.Service, b.Target).Set(time.Duration(b.Interval).Seconds())
		// Export what has not happened yet as such, so that rules see
		// "never" rather than nothing: no runs so far, never verified.
		for _, result := range []string{metrics.BackupSuccess, metrics.BackupFailure} {
			mt.Runs.WithLabelValues(b.Service, b.Target, result).Add(0)
			mt.RestoreTestRuns.WithLabelValues(b.Service, b.Target, result).Add(0)
		}
		mt.RestoreTestLastSuccess.WithLabelValues(b.Service, b.Target).Add(0)
	}
	// Until a restore test has passed, nothing shows how long a recovery
	// takes: the estimate is unbounded, which is what alerting should see.
	for svc := range s.cfg.Objectives {
		if _, ok := s.RTOEstimate(svc); !ok {
			mt.RTOEstimate.WithLabelValues(svc).Set(math.Inf(1))
		}
	}
}

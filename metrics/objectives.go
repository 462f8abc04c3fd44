package metrics

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// Recovery sources as exported in drguard_rpo_exposure_seconds{source}.
const (
	SourceBackup  = "backup"
	SourceReplica = config.RecoverySourceReplica
	SourcePITR    = config.RecoverySourcePITR
)

// RecoveryDurationBuckets span one minute to a day, around the plan's 4h RTO.
var RecoveryDurationBuckets = []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400}

// Objectives computes the recovery objectives' metrics from facts that
// others report: the RPO exposure per recovery source (backup from passed
// restore tests, replica from the replication probes, pitr from RDS), the
// RTO estimate (the last passed restore test plus the service's
// rto_overhead) and the recovery durations of resolved incidents. The
// configured objectives are exported when it is built.
type Objectives struct {
	// RPOObjective and RTOObjective are the configured objectives.
	RPOObjective *prometheus.GaugeVec
	RTOObjective *prometheus.GaugeVec
	// RTOEstimate is the last passed restore test's duration plus the
	// service's configured overhead; +Inf until a restore test passes.
	RTOEstimate *prometheus.GaugeVec
	// RecoveryDuration observes incidents from detection to resolution.
	// Its service and scenario come from alert labels: capped at
	// MaxLabelValues.
	RecoveryDuration *CappedHistogramVec

	objectives map[string]config.Objective
	exposure   *prometheus.Desc
	now        func() time.Time

	mu sync.Mutex
	// points[service][source][name] is a recovery point: name is the
	// backup, replica target or RDS instance.
	points map[string]map[string]map[string]time.Time
	// lastTest[service] is the newest passed restore test.
	lastTest map[string]RestoreTest
}

// RestoreTest is a passed restore test, as the backup service reports it.
type RestoreTest struct {
	Service string
	// Backup names the configured backup whose newest backup was
	// restored; it tells apart several backups of one service.
	Backup string
	// End is when the test ended; DurationSeconds how long it took.
	End             time.Time
	DurationSeconds float64
	// RecoveryPoint is the newest data found inside the restored copy.
	RecoveryPoint time.Time
}

// Incident is a resolved incident, as the recovery-duration histogram
// sees it.
type Incident struct {
	Service, Scenario string
	// StartsAt is when the alert started; FirstSeen when drguard first
	// saw it. The earlier of the two is the detection.
	StartsAt, FirstSeen time.Time
	ResolvedAt          time.Time
}

// NewObjectives registers the objective metrics with reg and exports the
// configured objectives (objectives maps a service to its objectives, as
// in the configuration).
func NewObjectives(reg prometheus.Registerer, objectives map[string]config.Objective) *Objectives {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, []string{"service"})
	}
	o := &Objectives{
		RPOObjective: gauge("rpo_objective_seconds", "Configured recovery point objective."),
		RTOObjective: gauge("rto_objective_seconds", "Configured recovery time objective."),
		RTOEstimate: gauge("rto_estimate_seconds",
			"Estimated recovery time: the last restore test's duration plus the configured overhead."),
		RecoveryDuration: cappedHistogram(reg, prometheus.HistogramOpts{
			Namespace: Namespace, Name: "recovery_duration_seconds",
			Help:    "Time from detection to resolution of incidents, by service and scenario.",
			Buckets: RecoveryDurationBuckets,
		}, []string{"service", "scenario"}, "service", "scenario"),
		exposure: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "rpo_exposure_seconds"),
			"Data that would be lost now, per recovery source (backup, replica, pitr): now minus its newest recoverable point.",
			[]string{"service", "source"}, nil),
		objectives: objectives,
		now:        time.Now,
		points:     map[string]map[string]map[string]time.Time{},
		lastTest:   map[string]RestoreTest{},
	}
	for svc, obj := range objectives {
		o.RPOObjective.WithLabelValues(svc).Set(time.Duration(obj.RPO).Seconds())
		o.RTOObjective.WithLabelValues(svc).Set(time.Duration(obj.RTO).Seconds())
		// Until a restore test has passed, nothing shows how long a
		// recovery takes: the estimate is unbounded, which is what
		// alerting should see.
		o.RTOEstimate.WithLabelValues(svc).Set(math.Inf(1))
	}
	reg.MustRegister(o.RPOObjective, o.RTOObjective, o.RTOEstimate, o.RecoveryDuration, exposureCollector{o})
	return o
}

// ObserveRestoreTest records a passed restore test: the heartbeat inside
// its data is the backup source's recovery point (the newest per backup
// is kept, whatever the order tests are reported in), and the newest test
// of the service sets its RTO estimate.
func (o *Objectives) ObserveRestoreTest(t RestoreTest) {
	o.set(t.Service, SourceBackup, t.Backup, t.RecoveryPoint, false)
	o.mu.Lock()
	if t.End.After(o.lastTest[t.Service].End) {
		o.lastTest[t.Service] = t
	}
	o.mu.Unlock()
	if est, ok := o.RTOEstimateOf(t.Service); ok {
		o.RTOEstimate.WithLabelValues(t.Service).Set(est.Seconds())
	}
}

// ObserveReplica records that the streaming replica target can be
// recovered from up to point, for every service that names it as a
// replica recovery source; the daemon feeds it from the replica's
// postgres_replication probe. A replica whose probe stops reporting keeps
// its last point, so its exposure grows; one that falls behind moves back.
func (o *Objectives) ObserveReplica(target string, point time.Time) {
	for svc, obj := range o.objectives {
		for _, src := range obj.RecoverySources {
			if src.Type == config.RecoverySourceReplica && src.Target == target {
				o.set(svc, SourceReplica, src.Target, point, true)
			}
		}
	}
}

// ObservePITR records an RDS instance's LatestRestorableTime as the pitr
// recovery point of service.
func (o *Objectives) ObservePITR(service, instance string, latest time.Time) {
	o.set(service, SourcePITR, instance, latest, true)
}

// ObserveIncident records a resolved incident's recovery duration, from
// its detection (the earlier of the alert's start and drguard's first
// sight of it) to its resolution. It returns false, recording nothing,
// when the times do not make a duration.
func (o *Objectives) ObserveIncident(in Incident) bool {
	detected := in.StartsAt
	if detected.IsZero() || (!in.FirstSeen.IsZero() && in.FirstSeen.Before(detected)) {
		detected = in.FirstSeen
	}
	if detected.IsZero() || in.ResolvedAt.IsZero() || in.ResolvedAt.Before(detected) {
		return false
	}
	o.RecoveryDuration.WithLabelValues(in.Service, in.Scenario).Observe(in.ResolvedAt.Sub(detected).Seconds())
	return true
}

// Exposure returns the current exposure of a service's recovery source,
// and whether it is known.
func (o *Objectives) Exposure(service, source string) (time.Duration, bool) {
	for _, e := range o.exposures() {
		if e.Service == service && e.Source == source {
			return time.Duration(e.Seconds * float64(time.Second)), true
		}
	}
	return 0, false
}

// RTOEstimateOf returns the last passed restore test's duration plus the
// service's rto_overhead, and whether a restore test has passed.
func (o *Objectives) RTOEstimateOf(service string) (time.Duration, bool) {
	o.mu.Lock()
	t, ok := o.lastTest[service]
	o.mu.Unlock()
	if !ok {
		return 0, false
	}
	return time.Duration(t.DurationSeconds*float64(time.Second)) + time.Duration(o.objectives[service].RTOOverhead), true
}

// set records a recovery point, keeping the newest per name unless
// replace says a source may move back (a replica that fell behind).
func (o *Objectives) set(service, source, name string, t time.Time, replace bool) {
	if service == "" || t.IsZero() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.points[service] == nil {
		o.points[service] = map[string]map[string]time.Time{}
	}
	if o.points[service][source] == nil {
		o.points[service][source] = map[string]time.Time{}
	}
	if old, ok := o.points[service][source][name]; ok && !replace && !t.After(old) {
		return
	}
	o.points[service][source][name] = t
}

// exposure is the RPO exposure of one recovery source of a service.
type exposure struct {
	Service, Source string
	Seconds         float64
}

// exposures computes, per service and source, now minus the newest
// recovery point, sorted by service and source.
func (o *Objectives) exposures() []exposure {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []exposure
	for svc, sources := range o.points {
		for src, byName := range sources {
			var newest time.Time
			for _, t := range byName {
				if t.After(newest) {
					newest = t
				}
			}
			out = append(out, exposure{Service: svc, Source: src, Seconds: max(now.Sub(newest).Seconds(), 0)})
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

// exposureCollector exports drguard_rpo_exposure_seconds computed at
// scrape time, so the value is always "now minus the recovery point" and
// never a stale snapshot.
type exposureCollector struct{ o *Objectives }

// Describe sends the one descriptor.
func (c exposureCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.o.exposure }

// Collect sends one gauge per (service, source).
func (c exposureCollector) Collect(ch chan<- prometheus.Metric) {
	for _, e := range c.o.exposures() {
		ch <- prometheus.MustNewConstMetric(c.o.exposure, prometheus.GaugeValue, e.Seconds, e.Service, e.Source)
	}
}

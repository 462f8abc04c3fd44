package metrics

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// shopObjectives is a service with a replica and an RDS PITR recovery
// source besides its backups.
var shopObjectives = map[string]config.Objective{
	"shop": {
		RPO: model.Duration(time.Hour), RTO: model.Duration(4 * time.Hour), RTOOverhead: model.Duration(10 * time.Minute),
		RecoverySources: []config.RecoverySource{
			{Type: config.RecoverySourceReplica, Target: "replica-db"},
			{Type: config.RecoverySourcePITR, Target: "aws", RDSInstance: "shop-prod"},
		},
	},
}

// newTestObjectives returns Objectives on a fresh registry whose clock
// stands at now.
func newTestObjectives(now time.Time) (*Objectives, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	o := NewObjectives(reg, shopObjectives)
	o.now = func() time.Time { return now }
	return o, reg
}

// exposureOf returns a source's exposure or fails the test when unknown.
func exposureOf(t *testing.T, o *Objectives, source string) time.Duration {
	t.Helper()
	d, ok := o.Exposure("shop", source)
	if !ok {
		t.Fatalf("no %s exposure", source)
	}
	return d
}

// TestObjectivesExportConfiguration exports the configured objectives and
// an unbounded RTO estimate until a restore test passes.
func TestObjectivesExportConfiguration(t *testing.T) {
	o, _ := newTestObjectives(time.Now())
	if got := testutil.ToFloat64(o.RPOObjective.WithLabelValues("shop")); got != 3600 {
		t.Errorf("rpo_objective_seconds = %v", got)
	}
	if got := testutil.ToFloat64(o.RTOObjective.WithLabelValues("shop")); got != 4*3600 {
		t.Errorf("rto_objective_seconds = %v", got)
	}
	if got := testutil.ToFloat64(o.RTOEstimate.WithLabelValues("shop")); !math.IsInf(got, 1) {
		t.Errorf("rto_estimate_seconds before any restore test = %v, want +Inf", got)
	}
	if _, ok := o.Exposure("shop", SourceBackup); ok {
		t.Error("a backup exposure is known before any restore test")
	}
}

// TestRecoverySourceExposures computes each source's exposure as now minus
// its newest recovery point: a replica's from its replication probe (and
// only for a replica that is a recovery source), pitr from RDS, backup from
// passed restore tests.
func TestRecoverySourceExposures(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	o, reg := newTestObjectives(now)

	o.ObserveReplica("replica-db", now.Add(-42*time.Second))
	o.ObserveReplica("app-db", now.Add(-time.Second)) // not a recovery source
	if got := exposureOf(t, o, SourceReplica); got != 42*time.Second {
		t.Errorf("replica exposure = %v, want 42s", got)
	}
	o.ObserveReplica("replica-db", now.Add(-90*time.Second)) // fell behind
	if got := exposureOf(t, o, SourceReplica); got != 90*time.Second {
		t.Errorf("replica exposure after it fell behind = %v, want 90s", got)
	}

	o.ObservePITR("shop", "shop-prod", now.Add(-5*time.Minute))
	if got := exposureOf(t, o, SourcePITR); got != 5*time.Minute {
		t.Errorf("pitr exposure = %v, want 5m", got)
	}

	o.ObserveRestoreTest(RestoreTest{Service: "shop", Backup: "app", End: now.Add(-time.Hour),
		DurationSeconds: 120, RecoveryPoint: now.Add(-2 * time.Hour)})
	if got := exposureOf(t, o, SourceBackup); got != 2*time.Hour {
		t.Errorf("backup exposure = %v, want 2h", got)
	}

	out, err := testutil.GatherAndLint(reg)
	if err != nil || len(out) != 0 {
		t.Errorf("lint: %v %v", out, err)
	}
	n, err := testutil.GatherAndCount(reg, "drguard_rpo_exposure_seconds", "drguard_rpo_objective_seconds", "drguard_rto_objective_seconds")
	if err != nil || n != 5 {
		t.Errorf("series = %d (%v), want 3 exposures and 2 objectives", n, err)
	}
}

// TestRestoreTestsSetRecoveryPointAndRTOEstimate keeps the newest recovery
// point per backup and the newest test per service, whatever the order the
// tests are reported in (a restart reports every test in storage).
func TestRestoreTestsSetRecoveryPointAndRTOEstimate(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	o, _ := newTestObjectives(now)
	newer := RestoreTest{Service: "shop", Backup: "app", End: now.Add(-time.Hour), DurationSeconds: 300, RecoveryPoint: now.Add(-90 * time.Minute)}
	older := RestoreTest{Service: "shop", Backup: "app", End: now.Add(-25 * time.Hour), DurationSeconds: 900, RecoveryPoint: now.Add(-26 * time.Hour)}
	o.ObserveRestoreTest(newer)
	o.ObserveRestoreTest(older)
	if got := exposureOf(t, o, SourceBackup); got != 90*time.Minute {
		t.Errorf("backup exposure = %v, want 90m (the newer test's recovery point)", got)
	}
	want := (300 * time.Second) + 10*time.Minute
	if est, ok := o.RTOEstimateOf("shop"); !ok || est != want {
		t.Errorf("RTO estimate = %v (%v), want %v", est, ok, want)
	}
	if got := testutil.ToFloat64(o.RTOEstimate.WithLabelValues("shop")); got != want.Seconds() {
		t.Errorf("rto_estimate_seconds = %v, want %v", got, want.Seconds())
	}
	// A second backup of the service with an older point does not hide
	// the first: the best point of the source counts.
	o.ObserveRestoreTest(RestoreTest{Service: "shop", Backup: "app-weekly", End: now.Add(-2 * time.Hour), DurationSeconds: 60, RecoveryPoint: now.Add(-7 * 24 * time.Hour)})
	if got := exposureOf(t, o, SourceBackup); got != 90*time.Minute {
		t.Errorf("backup exposure with a second, older backup = %v, want 90m", got)
	}
}

// TestObserveIncident observes detection (the earlier of the alert's start
// and drguard's first sight) to resolution, and nothing without both.
func TestObserveIncident(t *testing.T) {
	start := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		in   Incident
		want float64 // seconds; negative: not observed
	}{
		{"alert start first", Incident{StartsAt: start, FirstSeen: start.Add(time.Second), ResolvedAt: start.Add(20 * time.Minute)}, 1200},
		{"seen before its start", Incident{StartsAt: start, FirstSeen: start.Add(-time.Minute), ResolvedAt: start.Add(20 * time.Minute)}, 1260},
		{"no alert start", Incident{FirstSeen: start, ResolvedAt: start.Add(time.Minute)}, 60},
		{"not resolved", Incident{StartsAt: start}, -1},
		{"no detection time", Incident{ResolvedAt: start}, -1},
		{"resolved before detected", Incident{StartsAt: start, ResolvedAt: start.Add(-time.Second)}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, _ := newTestObjectives(start)
			c.in.Service, c.in.Scenario = "shop", "database_failure"
			if got := o.ObserveIncident(c.in); got != (c.want >= 0) {
				t.Fatalf("observed = %v", got)
			}
			var pb dto.Metric
			_ = o.RecoveryDuration.WithLabelValues("shop", "database_failure").(prometheus.Histogram).Write(&pb)
			switch {
			case c.want < 0 && pb.Histogram.GetSampleCount() != 0:
				t.Errorf("recovery_duration_seconds has %d samples, want none", pb.Histogram.GetSampleCount())
			case c.want >= 0 && (pb.Histogram.GetSampleCount() != 1 || pb.Histogram.GetSampleSum() != c.want):
				t.Errorf("recovery_duration_seconds = %v samples, sum %v; want 1, %v", pb.Histogram.GetSampleCount(), pb.Histogram.GetSampleSum(), c.want)
			}
		})
	}
}

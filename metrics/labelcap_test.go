package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAlertFedLabelsAreCapped feeds more distinct services than the cap
// into incidents_open and recovery_duration_seconds: each family keeps
// MaxLabelValues label sets plus "other", values admitted first keep their
// own series, and every value recorded as "other" is counted.
func TestAlertFedLabelsAreCapped(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRemediation(reg)
	b := NewObjectives(reg, nil)
	extra := 50
	for i := range MaxLabelValues + extra {
		svc := fmt.Sprintf("svc-%d", i)
		r.IncidentsOpen.WithLabelValues(svc, "db_down").Inc()
		b.RecoveryDuration.WithLabelValues(svc, "db_down").Observe(60)
	}
	for i := range MaxLabelValues + extra { // the decrements land where the increments did
		r.IncidentsOpen.WithLabelValues(fmt.Sprintf("svc-%d", i), "db_down").Dec()
	}
	if n := testutil.CollectAndCount(r.IncidentsOpen); n != MaxLabelValues+1 {
		t.Errorf("incidents_open has %d series, want %d", n, MaxLabelValues+1)
	}
	if n := testutil.CollectAndCount(b.RecoveryDuration); n != MaxLabelValues+1 {
		t.Errorf("recovery_duration_seconds has %d label sets, want %d", n, MaxLabelValues+1)
	}
	if v := testutil.ToFloat64(r.IncidentsOpen.GaugeVec.WithLabelValues(OtherLabelValue, OtherLabelValue)); v != 0 {
		t.Errorf("incidents_open{service=other} = %v after every decrement, want 0", v)
	}
	if v := testutil.ToFloat64(r.IncidentsOpen.GaugeVec.WithLabelValues("svc-0", "db_down")); v != 0 {
		t.Errorf("incidents_open{service=svc-0} = %v, want 0", v)
	}
	dropped := func(metric string) float64 {
		return testutil.ToFloat64(droppedCounter(reg).WithLabelValues(metric))
	}
	if got := dropped("drguard_incidents_open"); got != float64(2*extra) {
		t.Errorf("dropped{metric=drguard_incidents_open} = %v, want %d", got, 2*extra)
	}
	if got := dropped("drguard_recovery_duration_seconds"); got != float64(extra) {
		t.Errorf("dropped{metric=drguard_recovery_duration_seconds} = %v, want %d", got, extra)
	}
	if got := dropped("drguard_detections_total"); got != 0 {
		t.Errorf("dropped{metric=drguard_detections_total} = %v, want 0", got)
	}
}

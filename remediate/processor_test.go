package remediate

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

func TestBacklogIsProcessedInArrivalOrder(t *testing.T) {
	h := newHarness(t)
	h.cfg = defaultConfig()
	h.open()
	h.idle()
	// Several batches' worth, committed while no engine runs: repeats and
	// a resolution come batches after the alerts they follow.
	const n = 1300
	var alerts []store.Alert
	add := func(status detect.Status, i int) {
		fp := fmt.Sprintf("fp-%d", i)
		alerts = append(alerts, store.Alert{Source: string(detect.SourceAlertmanager), Fingerprint: fp, Status: string(status),
			StartsAt: t0, Labels: labelsFor(fmt.Sprintf("db-%d", i)), ReceivedAt: h.clock.Now()})
	}
	for i := range n {
		add(detect.StatusFiring, i)
	}
	for range 100 {
		add(detect.StatusFiring, 0)
	}
	add(detect.StatusResolved, n-1)
	if err := h.store.EnqueueAlerts(context.Background(), alerts); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.processOutbox(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pending, err := h.store.PendingAlerts(0); err != nil || len(pending) != 0 {
		t.Fatalf("pending alerts = %d (%v), want 0", len(pending), err)
	}
	incidents, err := h.eng.Incidents()
	if err != nil || len(incidents) != n {
		t.Fatalf("incidents = %d (%v), want %d", len(incidents), err, n)
	}
	for _, i := range []int{0, 255, 256, 1023, 1024, n - 1} {
		in, _ := h.incident(fmt.Sprintf("fp-%d", i))
		if want := fmt.Sprintf("inc-%06d", i+1); in.ID != want {
			t.Errorf("fp-%d: incident %s, want %s", i, in.ID, want)
		}
	}
	if in, _ := h.incident("fp-0"); in.Repeats != 100 {
		t.Errorf("fp-0 repeats = %d, want 100", in.Repeats)
	}
	if in, _ := h.incident(fmt.Sprintf("fp-%d", n-1)); in.State != store.IncidentResolved {
		t.Errorf("fp-%d state = %s, want resolved", n-1, in.State)
	}
}

// BenchmarkProcessAlerts measures the engine's work per outbox alert when
// every alert opens a new incident that no policy matches, as in the
// intake benchmark: one op is one alert of a backlog that processOutbox
// works through. Wall time includes the pauses that pace a backlog;
// cpu-ns/op is the process's CPU time (all threads, GC included) per
// alert, which those pauses and a shared machine disturb less.
func BenchmarkProcessAlerts(b *testing.B) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e, err := New(Options{Store: st, Config: defaultConfig(), Logger: slog.New(slog.DiscardHandler), Now: newClock().Now})
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]store.Alert, 0, 1024)
	flush := func() {
		if err := st.EnqueueAlerts(context.Background(), chunk); err != nil {
			b.Fatal(err)
		}
		chunk = chunk[:0]
	}
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		chunk = append(chunk, store.Alert{
			Source: string(detect.SourceAlertmanager), Fingerprint: id, Status: string(detect.StatusFiring), StartsAt: t0,
			Labels: map[string]string{"alertname": "BenchAlert", "service": "demo", "scenario": "bench", "target": id,
				"fp": id, "instance": "10.0.0.1:9100", "job": "node"},
			Annotations: map[string]string{"summary": "BenchAlert on " + id},
			ReceivedAt:  t0,
		})
		if len(chunk) == cap(chunk) {
			flush()
		}
	}
	if len(chunk) > 0 {
		flush()
	}
	// Lead a term without its workers: only the outbox is processed.
	e.term.Store(&term{queue: newRunQueue()})
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	if err := e.processOutbox(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time the process has used, user and system, which a
// shared machine disturbs less than wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

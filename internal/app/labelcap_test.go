package app

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
)

// drguardSeries counts the drguard_ series /metrics would expose, per
// family (a histogram's label set counts once).
func drguardSeries(t *testing.T, a *testApp) (map[string]int, int) {
	t.Helper()
	mfs, err := a.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	per, total := map[string]int{}, 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "drguard_") {
			per[mf.GetName()] = len(mf.GetMetric())
			total += len(mf.GetMetric())
		}
	}
	return per, total
}

// TestWebhookLabelsCannotGrowMetricsWithoutBound: one webhook with 1000
// alerts, each with its own service and scenario, opens 1000 incidents,
// but every metric fed from alert labels keeps at most MaxLabelValues
// label sets plus "other", and the values recorded as "other" are counted.
func TestWebhookLabelsCannotGrowMetricsWithoutBound(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drguard.yaml")
	yml := strings.Replace(baseConfig, "max_body_bytes: 65536", "max_body_bytes: 4194304", 1)
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, KnownActions())
	if err != nil {
		t.Fatal(err)
	}
	a := startAppWith(t, cfg, filepath.Join(dir, "data"))
	_, before := drguardSeries(t, a)

	const n = 1000
	alerts := make([]map[string]string, n)
	for i := range alerts {
		alerts[i] = map[string]string{"alertname": "Flood", "service": fmt.Sprintf("svc-%04d", i), "scenario": fmt.Sprintf("scn-%04d", i), "fp": fmt.Sprintf("fp-%04d", i)}
	}
	if code, body := do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, webhook("firing", time.Now(), alerts...)); code != 200 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	testharness.Eventually(t, 30*time.Second, "1000 incidents", func() bool {
		var p incidentsPage
		getJSON(t, a.URL+"/api/v1/incidents?limit=1000", &p)
		return len(p.Incidents) == n
	})
	testharness.Eventually(t, 5*time.Second, "the metrics of 1000 incidents", func() bool {
		return metric(t, a.Registry, "drguard_metric_label_values_dropped_total", "metric", "drguard_incidents_open") == n-metrics.MaxLabelValues
	})
	per, after := drguardSeries(t, a)
	for _, family := range []string{"drguard_incidents_open", "drguard_detections_total"} {
		if per[family] > metrics.MaxLabelValues+1 {
			t.Errorf("%s has %d series, want at most %d", family, per[family], metrics.MaxLabelValues+1)
		}
	}
	if grown := after - before; grown > 2*(metrics.MaxLabelValues+1)+10 {
		t.Errorf("one webhook added %d drguard_ series (%d → %d)", grown, before, after)
	}
	if got := metric(t, a.Registry, "drguard_incidents_open", "service", metrics.OtherLabelValue, "scenario", metrics.OtherLabelValue); got != n-metrics.MaxLabelValues {
		t.Errorf(`incidents_open{service="other"} = %v, want %d`, got, n-metrics.MaxLabelValues)
	}
	t.Logf("drguard_ series: %d before, %d after 1000 distinct services", before, after)
}

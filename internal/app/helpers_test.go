package app

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// Test credentials used by every in-process drguard.
const (
	webhookToken  = "test-webhook-token"
	adminToken    = "test-admin-token"
	approverToken = "test-approver-token"
	approver2     = "test-approver2-token"
	viewerToken   = "test-viewer-token"
)

// baseConfig is the part of every test configuration that is not policy.
const baseConfig = `
server:
  max_body_bytes: 65536
auth:
  webhook:
    bearer_token: test-webhook-token
    basic_auth: {username: alertmanager, password: test-basic-password}
  users:
    - {name: alice, role: admin, token: test-admin-token}
    - {name: bob, role: approver, token: test-approver-token}
    - {name: carol, role: approver, token: test-approver2-token}
    - {name: victor, role: viewer, token: test-viewer-token}
objectives:
  demo: {rpo: 1h, rto: 4h}
`

// testApp is a drguard started in-process on a free port.
type testApp struct {
	*App
	URL      string
	Registry *prometheus.Registry
	Dir      string
	stop     func()
}

// startApp writes cfg (baseConfig + policies) to a file, loads it with the
// real loader and serves it until the test ends.
func startApp(t testing.TB, policies string, opts ...func(*Options)) *testApp {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "drguard.yaml")
	if err := os.WriteFile(path, []byte(baseConfig+policies), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, KnownActions())
	if err != nil {
		t.Fatalf("load test config: %v", err)
	}
	return startAppWith(t, cfg, filepath.Join(dir, "data"), opts...)
}

func startAppWith(t testing.TB, cfg *config.Config, storage string, opts ...func(*Options)) *testApp {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := Options{Config: cfg, ListenAddress: "127.0.0.1:0", StoragePath: storage, Registry: reg, Logger: testharness.Logger(t)}
	for _, f := range opts {
		f(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatalf("start drguard: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	ta := &testApp{App: a, URL: "http://" + a.Addr(), Registry: reg, Dir: storage}
	ta.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("drguard stopped with: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("drguard did not stop within 15s")
		}
	}
	t.Cleanup(func() { ta.Stop() })
	return ta
}

// Stop shuts drguard down (once).
func (a *testApp) Stop() {
	if a.stop != nil {
		a.stop()
		a.stop = nil
	}
}

// do sends a request with a bearer token ("" for none) and returns the
// status and body.
func do(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	return testharness.Do(t, method, url, token, body)
}

// webhook builds an Alertmanager v4 payload with one alert per label set.
func webhook(status string, startsAt time.Time, alerts ...map[string]string) []byte {
	type alert struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
		Fingerprint string            `json:"fingerprint"`
	}
	msg := map[string]any{"version": "4", "status": status, "receiver": "drguard", "groupKey": "test"}
	var list []alert
	for _, l := range alerts {
		a := alert{Status: status, Labels: l, Annotations: map[string]string{"summary": l["alertname"] + " on " + l["target"]}, StartsAt: startsAt, Fingerprint: l["fp"]}
		if status == "resolved" {
			a.EndsAt = startsAt.Add(time.Minute)
		}
		list = append(list, a)
	}
	msg["alerts"] = list
	raw, _ := json.Marshal(msg)
	return raw
}

// getJSON GETs url as the admin and decodes the body into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, body := do(t, http.MethodGet, url, adminToken, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// metric reads one sample of a metric family with the given labels (a
// histogram's sample count).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			want := map[string]string{}
			for i := 0; i+1 < len(labels); i += 2 {
				want[labels[i]] = labels[i+1]
			}
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/app"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// Credentials of every drguard these tests start.
const (
	webhookToken = "e2e-webhook-token"
	adminToken   = "e2e-admin-token-01"
)

// authConfig is the auth section every test configuration starts with.
const authConfig = `
auth:
  webhook:
    bearer_token: ` + webhookToken + `
  users:
    - {name: admin, role: admin, token: ` + adminToken + `}
`

// drguard is a daemon started in-process with the real loader and app.
type drguard struct {
	// URL is the base URL of its API, e.g. http://127.0.0.1:40123.
	URL string
	// Addr is its host:port.
	Addr string
}

// writeConfig writes cfg to drguard.yaml in a new temporary directory and
// returns its path and the directory.
func writeConfig(t *testing.T, cfg string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "drguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// startDrguardFile loads the configuration file at path and runs drguard
// with its journal in storage until the test ends.
func startDrguardFile(t *testing.T, path, storage string) *drguard {
	t.Helper()
	return startDrguardAt(t, path, storage, "127.0.0.1:0")
}

// startDrguardAt is startDrguardFile listening on listen.
func startDrguardAt(t *testing.T, path, storage, listen string) *drguard {
	t.Helper()
	c, err := config.Load(path, app.KnownActions())
	if err != nil {
		t.Fatalf("load the test configuration: %v", err)
	}
	a, err := app.New(app.Options{Config: c, ListenAddress: listen, StoragePath: storage, Logger: testharness.Logger(t)})
	if err != nil {
		t.Fatalf("start drguard: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("drguard stopped with: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("drguard did not stop within 20s")
		}
	})
	d := &drguard{URL: "http://" + a.Addr(), Addr: a.Addr()}
	testharness.Eventually(t, 10*time.Second, "drguard to be ready", func() bool {
		code, _ := d.do(t, http.MethodGet, "/readyz", "", nil)
		return code == http.StatusOK
	})
	return d
}

// cli runs a drguard command in-process and fails the test unless it
// exits 0.
func cli(t *testing.T, args ...string) {
	t.Helper()
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if code := app.Main(ctx, args, app.IO{Stdout: &out, Stderr: &errOut}); code != app.ExitOK {
		t.Fatalf("drguard %s exited %d:\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
}

// do sends a request with a bearer token ("" for none) and returns the
// status and body; a transport error is logged and gives status 0.
func (d *drguard) do(t *testing.T, method, path, token string, body io.Reader) (int, []byte) {
	t.Helper()
	code, out, err := testharness.Send(method, d.URL+path, token, body)
	if err != nil {
		t.Log(err)
	}
	return code, out
}

// scrape returns drguard's /metrics exposition as text.
func (d *drguard) scrape(t *testing.T) []byte {
	t.Helper()
	code, body := d.do(t, http.MethodGet, "/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return body
}

// families parses an exposition.
func families(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(text)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// sampleNames returns every series name an exposition yields in
// Prometheus: a histogram's _bucket, _sum and _count, a summary's _sum and
// _count, every other family's own name.
func sampleNames(mfs map[string]*dto.MetricFamily) map[string]bool {
	names := map[string]bool{}
	for name, mf := range mfs {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name] = true
			names[name+"_sum"], names[name+"_count"] = true, true
		default:
			names[name] = true
		}
	}
	return names
}

package backup

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
)

// TestBrokenDestinationStallsNoOtherBackup schedules two backups that are
// both due at start: the first in the configuration goes to a broken S3
// endpoint — one that accepts connections and never answers, or one that
// refuses them — the second to a healthy S3 server. The healthy backup
// runs at once, long before the broken one's catalog_timeout; the broken
// one is a failed run, counted in drguard_backup_runs_total{result="failure"}
// and journaled with its reason, within that timeout.
func TestBrokenDestinationStallsNoOtherBackup(t *testing.T) {
	const hungTimeout = 6 * time.Second
	for _, tc := range []struct {
		name     string
		endpoint func(t *testing.T) string
		// wantErr is in the journaled run's error; hangs says the run
		// fails only once the catalog_timeout has passed.
		wantErr string
		hangs   bool
	}{
		{name: "accepts and never answers", hangs: true, wantErr: "did not answer within 6s (catalog_timeout)",
			endpoint: func(t *testing.T) string { return testharness.NewHangingServer(t).Addr }},
		{name: "refuses connections", wantErr: "connection refused",
			endpoint: func(t *testing.T) string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				_ = ln.Close()
				return ln.Addr().String()
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { testBrokenDestination(t, tc.endpoint(t), tc.wantErr, tc.hangs, hungTimeout) })
	}
}

func testBrokenDestination(t *testing.T, addr, wantErr string, hangs bool, hungTimeout time.Duration) {
	e := newEnv(t, "")
	e.seed(e.source, time.Now())
	healthy := e.cfg.Backups[0]
	stuck := healthy
	stuck.Name, stuck.Destination, stuck.CatalogTimeout = "stuck", "hung", model.Duration(hungTimeout)
	e.cfg.Targets.S3 = append(e.cfg.Targets.S3, config.S3Target{Name: "hung", Bucket: testBucket, Endpoint: "http://" + addr})
	e.cfg.Backups = []config.Backup{stuck, healthy} // the hung one first, as a serial scheduler would meet it
	e.cfg.RestoreTests = nil
	svc, err := New(Options{
		Config: e.cfg, Metrics: e.metrics, Journal: e.journal, TempDir: t.TempDir(), Integrity: probe.CheckCopy(e.cfg, nil),
		Logger: testharness.Logger(t),
		S3Client: func(_ context.Context, target config.S3Target) (*s3.Client, error) {
			if target.Name == "hung" {
				return e.s3.NewClient(t, func(o *s3.Options) {
					o.BaseEndpoint, o.HTTPClient = aws.String(target.Endpoint), &http.Client{}
				}), nil
			}
			return e.s3.NewClient(t, func(o *s3.Options) { o.RetryMaxAttempts = 2 }), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(e.ctx())
	started := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Run(ctx) }()
	runs := func() map[string]store.BackupRun {
		out := map[string]store.BackupRun{}
		_ = e.journal.View(func(tx *store.Tx) error {
			return tx.ForEachBackupRun(func(r store.BackupRun) error { out[r.Backup] = r; return nil })
		})
		return out
	}
	testharness.Eventually(t, time.Minute, "the healthy backup", func() bool { _, ok := runs()[healthy.Name]; return ok })
	ok := runs()[healthy.Name]
	delay := ok.Start.Sub(started)
	t.Logf("healthy backup started %s after the scheduler, succeeded in %s", delay, ok.End.Sub(ok.Start))
	if ok.Result != store.BackupSucceeded {
		t.Errorf("healthy backup: %+v", ok)
	}
	if delay >= hungTimeout/2 {
		t.Errorf("the healthy backup started %s after the scheduler: it waited for the hung destination (catalog_timeout %s)", delay, hungTimeout)
	}

	failures := e.metrics.Runs.WithLabelValues(stuck.Service, stuck.Target, metrics.BackupFailure)
	testharness.Eventually(t, hungTimeout+20*time.Second, "the hung backup counted as failed", func() bool {
		_, journaled := runs()[stuck.Name]
		return testutil.ToFloat64(failures) >= 1 && journaled
	})
	counted := time.Since(started)
	t.Logf("broken backup counted as failed %s after the scheduler started (catalog_timeout %s)", counted, hungTimeout)
	bad, found := runs()[stuck.Name]
	if !found || bad.Result != store.BackupFailed || bad.Trigger != TriggerSchedule ||
		!strings.Contains(bad.Error, wantErr) {
		t.Errorf("hung backup's journaled run: %+v", bad)
	}
	if took := bad.End.Sub(bad.Start); hangs && took < hungTimeout-time.Second {
		t.Errorf("the hung backup failed after %s, before its catalog_timeout %s", took, hungTimeout)
	}
	if got := testutil.ToFloat64(e.metrics.Runs.WithLabelValues(healthy.Service, healthy.Target, metrics.BackupSuccess)); got != 1 {
		t.Errorf("successful runs = %v, want 1", got)
	}
	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduler did not stop within 10s of its context's end")
	}
}

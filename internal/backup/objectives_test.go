package backup

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
)

// objectivesConfig is a plan with a replica and an RDS PITR recovery source,
// whose RDS endpoint is rdsURL.
func objectivesConfig(t *testing.T, rdsURL, s3URL string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf(`auth: {webhook: {bearer_token: test-webhook-token}}
objectives:
  shop:
    rpo: 1h
    rto: 4h
    recovery_sources:
      - {type: replica, target: replica-db}
      - {type: pitr, target: aws, rds_instance: shop-prod}
targets:
  postgres:
    - {name: app-db, service: shop, dsn: "postgres://u@127.0.0.1:1/app"}
    - {name: replica-db, service: shop, dsn: "postgres://u@127.0.0.1:1/app"}
  aws: [{name: aws, region: eu-west-1, endpoint: %q}]
  s3: [{name: store, bucket: backups, endpoint: %q}]
backups:
  - {name: app, target: app-db, destination: store, interval: 6h, key_file: %q, retention: {daily: 30d, weekly: 90d, monthly: 1y}}
`, rdsURL, s3URL, key)
	c, err := config.Parse([]byte(yml), filepath.Join(dir, "c.yaml"), config.Known{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeRDS answers DescribeDBInstances (the Query protocol) for one instance.
func fakeRDS(t *testing.T, instance string, latest time.Time) (*httptest.Server, *int) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		calls++
		if form.Get("Action") != "DescribeDBInstances" || form.Get("DBInstanceIdentifier") != instance {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>DBInstanceNotFound</Code><Message>DBInstance %s not found.</Message></Error><RequestId>1</RequestId></ErrorResponse>`, form.Get("DBInstanceIdentifier"))
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<DescribeDBInstancesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeDBInstancesResult><DBInstances><DBInstance>
    <DBInstanceIdentifier>%s</DBInstanceIdentifier>
    <LatestRestorableTime>%s</LatestRestorableTime>
  </DBInstance></DBInstances></DescribeDBInstancesResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</DescribeDBInstancesResponse>`, instance, latest.Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// TestRecoverySourceExposures measures the pitr exposure from RDS's
// LatestRestorableTime (a fake RDS at the HTTP level) and the replica
// exposure from the replication probe's result, and exports both.
func TestRecoverySourceExposures(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	latest := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Second)
	rds, calls := fakeRDS(t, "shop-prod", latest)
	cfg := objectivesConfig(t, rds.URL, "http://127.0.0.1:1")
	reg := prometheus.NewRegistry()
	m := metrics.NewBackups(reg, nil)
	svc, err := New(Options{Config: cfg, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	svc.refreshPITR(context.Background())
	if *calls != 1 {
		t.Errorf("DescribeDBInstances calls = %d", *calls)
	}
	if got, ok := svc.Exposure("shop", SourcePITR); !ok || got < 5*time.Minute || got > 5*time.Minute+5*time.Second {
		t.Errorf("pitr exposure = %v (%v), want about 5m", got, ok)
	}

	svc.ObserveReplica("replica-db", time.Now().Add(-42*time.Second))
	svc.ObserveReplica("app-db", time.Now().Add(-time.Second)) // not a recovery source
	if got, ok := svc.Exposure("shop", SourceReplica); !ok || got < 42*time.Second || got > 45*time.Second {
		t.Errorf("replica exposure = %v (%v), want about 42s", got, ok)
	}
	svc.setObjectiveMetrics()
	start := time.Now().Add(-time.Hour)
	if !svc.ObserveIncident(store.Incident{State: store.IncidentResolved, StartsAt: start, FirstSeen: start.Add(time.Second),
		ResolvedAt: start.Add(20 * time.Minute), Labels: map[string]string{"service": "shop", "scenario": "database_failure"}}) {
		t.Error("a resolved incident was not observed")
	}
	if svc.ObserveIncident(store.Incident{State: store.IncidentOpen, StartsAt: start}) {
		t.Error("an open incident was observed")
	}
	h := m.RecoveryDuration.WithLabelValues("shop", "database_failure").(prometheus.Histogram)
	var pb dto.Metric
	_ = h.Write(&pb)
	if pb.Histogram.GetSampleCount() != 1 || pb.Histogram.GetSampleSum() != 1200 {
		t.Errorf("recovery_duration_seconds = %v samples, sum %v; want 1, 1200", pb.Histogram.GetSampleCount(), pb.Histogram.GetSampleSum())
	}

	out, err := testutil.GatherAndLint(reg)
	if err != nil || len(out) != 0 {
		t.Errorf("lint: %v %v", out, err)
	}
	n, err := testutil.GatherAndCount(reg, "drguard_rpo_exposure_seconds", "drguard_rpo_objective_seconds",
		"drguard_rto_objective_seconds", "drguard_backup_expected_interval_seconds", "drguard_recovery_duration_seconds")
	if err != nil || n != 6 {
		t.Errorf("series = %d (%v), want 2 exposures, 2 objectives, 1 interval, 1 histogram", n, err)
	}
}

// TestPruneDeletesAndJournals applies retention to backups in object
// storage: dry run lists, a real run deletes what the policy does not keep
// (and an old orphaned data object) and journals each deletion.
func TestPruneDeletesAndJournals(t *testing.T) {
	srv := testharness.S3(t)
	srv.CreateBucket("backups")
	cfg := objectivesConfig(t, "http://127.0.0.1:1", srv.Endpoint)
	journal, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	// Yesterday at 20:00 UTC: the 60 six-hourly backups below then fill
	// exactly 15 calendar days, whatever the time the test runs at.
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(-4 * time.Hour)
	svc, err := New(Options{Config: cfg, Journal: journal, Now: func() time.Time { return now },
		S3Client: func(context.Context, config.S3Target) (*s3.Client, error) { return srv.NewClient(t), nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o, err := svc.objects(ctx, cfg.Backups[0])
	if err != nil {
		t.Fatal(err)
	}
	ms := history(now, 40)
	for _, m := range ms[len(ms)-60:] {
		m.Object = o.prefix + m.ID + DataSuffix
		if err := o.put(ctx, m.Object, []byte("data"), "", ""); err != nil {
			t.Fatal(err)
		}
		if err := writeRecord(ctx, o, o.prefix+m.ID+ManifestSuffix, m, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetNow(now.Add(-48 * time.Hour))
	if err := o.put(ctx, o.prefix+"orphan"+DataSuffix, []byte("x"), "", ""); err != nil {
		t.Fatal(err)
	}
	srv.UseRealTime()

	plan, orphans, err := svc.Prune(ctx, "app", true)
	if err != nil {
		t.Fatal(err)
	}
	var doomed int
	for _, d := range plan {
		if !d.Keep {
			doomed++
		}
	}
	// 60 backups over 15 days, 4 a day: one a day is kept, plus today's newest.
	if doomed != 60-15 || len(orphans) != 1 {
		t.Fatalf("dry run: %d to delete, orphans %v", doomed, orphans)
	}
	if left, _ := svc.Catalog(ctx, "app"); len(left) != 60 {
		t.Fatalf("dry run deleted something: %d left", len(left))
	}
	if _, _, err := svc.Prune(ctx, "app", false); err != nil {
		t.Fatal(err)
	}
	left, _ := svc.Catalog(ctx, "app")
	if len(left) != 15 {
		t.Errorf("%d backups left, want 15", len(left))
	}
	audits := 0
	_ = journal.View(func(tx *store.Tx) error {
		return tx.ForEachAudit(func(a store.AuditEntry) error {
			if a.Action == "backup.delete" {
				audits++
			}
			return nil
		})
	})
	if audits != doomed+1 {
		t.Errorf("%d deletions journaled, want %d", audits, doomed+1)
	}
}

// TestBackupErrorsHideThePassword fails a backup at connecting: neither the
// error nor the journal holds the DSN's password.
func TestBackupErrorsHideThePassword(t *testing.T) {
	cfg := objectivesConfig(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	cfg.Targets.Postgres[0].DSN = "postgres://drguard:Sup3rSecretPw@127.0.0.1:1/app?connect_timeout=2"
	journal, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	svc, err := New(Options{Config: cfg, Journal: journal})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Backup(context.Background(), "app", TriggerCLI)
	if err == nil || strings.Contains(err.Error(), "Sup3rSecretPw") {
		t.Fatalf("error = %v", err)
	}
	_ = journal.View(func(tx *store.Tx) error {
		return tx.ForEachBackupRun(func(r store.BackupRun) error {
			if strings.Contains(r.Error, "Sup3rSecretPw") || r.Result != store.BackupFailed {
				t.Errorf("journal: %+v", r)
			}
			return nil
		})
	})
	t.Logf("error: %v", err)
}

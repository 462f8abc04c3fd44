package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// planConfig is a plan with one backup "app" of app-db into the s3 target
// at s3URL.
func planConfig(t *testing.T, s3URL string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf(`auth: {webhook: {bearer_token: test-webhook-token}}
objectives:
  shop: {rpo: 6h, rto: 4h}
targets:
  postgres:
    - {name: app-db, service: shop, dsn: "postgres://u@127.0.0.1:1/app"}
  s3: [{name: store, bucket: backups, endpoint: %q}]
backups:
  - {name: app, target: app-db, destination: store, interval: 6h, key_file: %q, retention: {daily: 30d, weekly: 90d, monthly: 1y}}
`, s3URL, key)
	c, err := config.Parse([]byte(yml), filepath.Join(dir, "c.yaml"), config.Known{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPruneDeletesAndJournals applies retention to backups in object
// storage: dry run lists, a real run deletes what the policy does not keep
// (and an old orphaned data object) and journals each deletion.
func TestPruneDeletesAndJournals(t *testing.T) {
	srv := testharness.S3(t)
	srv.CreateBucket("backups")
	cfg := planConfig(t, srv.Endpoint)
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
	cfg := planConfig(t, "http://127.0.0.1:1")
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

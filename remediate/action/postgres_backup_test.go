package action

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestPostgresBackupAction takes a backup through the action, as a policy
// step would, against real PostgreSQL and S3.
func TestPostgresBackupAction(t *testing.T) {
	pg := testharness.Postgres(t, testharness.NoReplica())
	srv := testharness.S3(t)
	srv.CreateBucket("backups")
	pg.CreateDB("app")
	if err := pg.Exec(context.Background(), pg.PrimaryDSN("app"), `CREATE TABLE t AS SELECT generate_series(1, 100) i`); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("APP_DSN", pg.PrimaryDSN("app"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k"), []byte(strings.Repeat("0123456789abcdef", 4)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`auth: {webhook: {bearer_token: test-webhook-token}}
targets:
  postgres: [{name: app-db, dsn: "${APP_DSN}"}]
  s3: [{name: store, bucket: backups, endpoint: %q}]
backups: [{name: app, target: app-db, destination: store, key_file: k}]
`, srv.Endpoint)), filepath.Join(dir, "c.yaml"), config.Known{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := backup.New(backup.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Registry["postgres.backup"].New(Deps{Config: cfg, Backups: svc})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(map[string]any{"backup": "{{ .Labels.target }}"}); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := a.Validate(map[string]any{"bakup": "app"}); err == nil {
		t.Error("Validate accepted an unknown param")
	}
	if info := a.Info(); info.Destructive || !info.Idempotent {
		t.Errorf("Info() = %+v", info)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No backup param: the run's target names the backup's target.
	out, err := a.Run(ctx, Request{Target: "app-db", Params: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Result["backup"] != "app" || out.Result["backup_id"] == "" || !strings.HasPrefix(out.Result["object"].(string), "s3://backups/app/") {
		t.Errorf("outcome = %+v", out)
	}
	if _, err := a.Run(ctx, Request{Params: map[string]any{"backup": "nope"}}); err == nil || !strings.Contains(err.Error(), `no backup named "nope"`) {
		t.Errorf("unknown backup: %v", err)
	}
}

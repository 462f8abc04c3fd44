package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// runCLI runs a drguard command in-process and returns its exit code and
// output.
func runCLI(args ...string) (int, string, string) {
	var out, errOut strings.Builder
	code := Main(context.Background(), args, IO{Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

// TestCheckLintsTheBackupPlan checks the example plan: with PITR and a
// replica beside its 6-hourly backups it warns and exits 0; the same plan
// without them fails with the error that says what to do.
func TestCheckLintsTheBackupPlan(t *testing.T) {
	examples := filepath.Join("..", "..", "deploy", "examples")
	code, out, errOut := runCLI("check", "--config.file="+filepath.Join(examples, "drguard.yaml"))
	if code != ExitOK {
		t.Fatalf("check drguard.yaml exited %d:\n%s%s", code, out, errOut)
	}
	const warning = `backups[0].interval: backups every 6h cannot meet RPO 1h on their own: service "fruitfulplanet" relies on replica postgres-replica and PITR of fruitfulplanet-prod for it`
	if !strings.Contains(out, "warning: ") || !strings.Contains(out, warning) {
		t.Errorf("check drguard.yaml does not warn %q:\n%s", warning, out)
	}

	// The same plan, in a copy beside the same secrets, without recovery
	// sources.
	raw, err := os.ReadFile(filepath.Join(examples, "drguard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?m)^    recovery_sources:\n(?:      .*\n|        .*\n)+`)
	stripped := block.ReplaceAllString(string(raw), "")
	if stripped == string(raw) {
		t.Fatal("the example has no recovery_sources block to remove")
	}
	dir := t.TempDir()
	copyDir(t, filepath.Join(examples, "secrets"), filepath.Join(dir, "secrets"))
	file := filepath.Join(dir, "no-pitr-no-replica.yaml")
	if err := os.WriteFile(file, []byte(stripped), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI("check", "--config.file="+file)
	const want = "backups every 6h cannot meet RPO 1h: add PITR/WAL archiving or a replica, or back up at least hourly"
	if code != ExitFail || !strings.Contains(errOut, "error: "+file) || !strings.Contains(errOut, want) {
		t.Errorf("check without PITR and replica exited %d, want 1 with %q:\n%s%s", code, want, out, errOut)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackupRestoreVerifyCommands drives the three commands against real
// PostgreSQL and S3, as an operator would, including a tampered backup.
func TestBackupRestoreVerifyCommands(t *testing.T) {
	pg := testharness.Postgres(t, testharness.NoReplica())
	srv := testharness.S3(t)
	srv.CreateBucket("backups")
	pg.CreateDB("app")
	ctx := context.Background()
	if err := pg.Exec(ctx, pg.PrimaryDSN("app"), `CREATE TABLE t AS SELECT i, md5(i::text) AS v FROM generate_series(1, 1000) i;
		CREATE TABLE drguard_heartbeat (id text PRIMARY KEY, ts timestamptz NOT NULL);
		INSERT INTO drguard_heartbeat VALUES ('drguard', now() - interval '2 minutes')`); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("DRGUARD_APP_DSN", pg.PrimaryDSN("app"))
	t.Setenv("DRGUARD_SCRATCH_DSN", pg.PrimaryDSN("postgres"))
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "backup.key"), []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "drguard.yaml")
	// No auth section: backup, restore and verify serve no HTTP and need
	// no webhook credentials (check and serve do, see the end).
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`objectives:
  shop: {rpo: 1h, rto: 4h, rto_overhead: 15m}
targets:
  postgres:
    - {name: app-db, service: shop, dsn: "${DRGUARD_APP_DSN}"}
    - {name: scratch, dsn: "${DRGUARD_SCRATCH_DSN}"}
  s3: [{name: store, bucket: backups, prefix: pg/, region: us-east-1, endpoint: %q}]
backups:
  - {name: app, target: app-db, destination: store, interval: 1h, key_file: backup.key, sse: AES256}
restore_tests:
  - {name: app-daily, backup: app, interval: 24h, scratch_target: scratch}
`, srv.Endpoint)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	conf := "--config.file=" + cfg

	code, out, errOut := runCLI("backup", conf, "--target=app-db", "--storage.path="+filepath.Join(dir, "journal"))
	if code != ExitOK || !strings.Contains(out, "backup app/") || !strings.Contains(out, "recovery point") {
		t.Fatalf("backup exited %d:\n%s%s", code, out, errOut)
	}
	id := regexp.MustCompile(`backup app/(\S+) of app-db`).FindStringSubmatch(out)[1]

	pg.CreateDB("restored")
	code, out, errOut = runCLI("restore", conf, "--target=app", "--backup="+id, "--into="+pg.PrimaryDSN("restored"))
	if code != ExitOK || !strings.Contains(out, "restored app/"+id) {
		t.Fatalf("restore exited %d:\n%s%s", code, out, errOut)
	}
	var n int
	if err := pg.QueryRow(ctx, pg.PrimaryDSN("restored"), "SELECT count(*) FROM t", &n); err != nil || n != 1000 {
		t.Errorf("restored rows = %d (%v)", n, err)
	}

	code, out, errOut = runCLI("verify", conf, "--target=app")
	if code != ExitOK || !strings.Contains(out, "PASSED") || !strings.Contains(out, "(heartbeat)") || !strings.Contains(out, "RTO estimate") {
		t.Fatalf("verify exited %d:\n%s%s", code, out, errOut)
	}

	code, out, _ = runCLI("backup", conf, "--target=app", "--dry-run")
	if code != ExitOK || !strings.Contains(out, "keep         "+id) || !strings.Contains(out, "retention: 1 kept, 0 would delete") {
		t.Errorf("backup --dry-run exited %d:\n%s", code, out)
	}

	// One flipped byte: restore and verify refuse, the destination stays empty.
	client := srv.NewClient(t)
	obj := "pg/app/" + id + ".pgdump.zst.enc"
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("backups"), Key: aws.String(obj)})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(got.Body)
	got.Body.Close()
	data[len(data)/3] ^= 0x40
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(obj),
		Body: strings.NewReader(string(data)), ContentLength: aws.Int64(int64(len(data)))}); err != nil {
		t.Fatal(err)
	}
	pg.CreateDB("untouched")
	code, out, errOut = runCLI("restore", conf, "--target=app", "--into="+pg.PrimaryDSN("untouched"))
	if code != ExitFail || !strings.Contains(errOut, "REFUSED: backup app/"+id+" failed verification") {
		t.Errorf("restore of a tampered backup exited %d:\n%s%s", code, out, errOut)
	}
	var tables int
	if err := pg.QueryRow(ctx, pg.PrimaryDSN("untouched"), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &tables); err != nil || tables != 0 {
		t.Errorf("the destination has %d tables (%v)", tables, err)
	}
	code, out, errOut = runCLI("verify", conf, "--target=app")
	if code != ExitFail || !strings.Contains(out, "FAILED") || !strings.Contains(errOut, "REFUSED") {
		t.Errorf("verify of a tampered backup exited %d:\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "drguard-test-secret") {
		t.Error("a credential reached the output")
	}
}

// TestOfflineCommandsNeedNoWebhookCredentials: the configuration of the
// backup commands above has no auth section; check (for serve) refuses it
// and says why.
func TestOfflineCommandsNeedNoWebhookCredentials(t *testing.T) {
	t.Setenv("DRGUARD_TEST_DSN", "postgres://app@localhost/app")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "drguard.yaml")
	if err := os.WriteFile(cfg, []byte("targets:\n  postgres: [{name: db, dsn: '${DRGUARD_TEST_DSN}'}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("check", "--config.file="+cfg); code != ExitFail || !strings.Contains(errOut, "auth.webhook: the webhook needs a credential") {
		t.Errorf("check = %d, %s", code, errOut)
	}
	for _, cmd := range []string{"backup", "verify"} {
		code, _, errOut := runCLI(cmd, "--config.file="+cfg, "--target=db")
		if strings.Contains(errOut, "auth.webhook") || !strings.Contains(errOut, `none of a target "db"`) {
			t.Errorf("%s = %d, %s; want past the configuration, to the missing backup", cmd, code, errOut)
		}
	}
}

// TestHelpExitsZero: --help and -h on drguard and on every command print
// the usage and exit 0.
func TestHelpExitsZero(t *testing.T) {
	if code, out, _ := runCLI("--help"); code != ExitOK || !strings.Contains(out, "commands:") {
		t.Errorf("drguard --help = %d, %q", code, out)
	}
	for name := range commands() {
		for _, flag := range []string{"--help", "-h"} {
			code, out, errOut := runCLI(name, flag)
			if code != ExitOK {
				t.Errorf("drguard %s %s = %d (%s), want 0", name, flag, code, errOut)
			}
			if help := out + errOut; strings.Contains(help, "panic") {
				t.Errorf("drguard %s %s printed a panic in its usage: %s", name, flag, help)
			}
		}
	}
	if code, _, _ := runCLI("check", "--no-such-flag"); code != ExitUsage {
		t.Errorf("a bad flag exits %d, want %d", code, ExitUsage)
	}
}

package probe

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// s3Env starts an S3 server with bucket "backups", points the default AWS
// credential chain at it, and returns an Env with targets "backups"
// (prefix db/) and "empty" (prefix none/).
func s3Env(t *testing.T) (*testharness.S3Server, *s3.Client, Env) {
	t.Helper()
	srv := testharness.S3(t)
	srv.CreateBucket("backups")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey, "AWS_SESSION_TOKEN": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
	} {
		t.Setenv(k, v)
	}
	cfg := &config.Config{Targets: config.Targets{S3: []config.S3Target{
		{Name: "backups", Service: "shop", Bucket: "backups", Prefix: "db/", Region: srv.Region, Endpoint: srv.Endpoint},
		{Name: "empty", Service: "shop", Bucket: "backups", Prefix: "none/", Region: srv.Region, Endpoint: srv.Endpoint},
	}}}
	env, _ := testEnv(t, cfg)
	return srv, srv.NewClient(t), env
}

// put uploads one object.
func put(t *testing.T, c *s3.Client, key, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(key),
		Body: strings.NewReader(body)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// TestBackupAge: backups older than max_age fire, a fresh upload resolves,
// and the bucket's posture (versioning off, then on) is reported.
func TestBackupAge(t *testing.T) {
	srv, client, env := s3Env(t)
	now := time.Now().UTC()
	old := now.Add(-72 * time.Hour)
	srv.SetNow(old)
	put(t, client, "db/2030-01-01.dump.zst.enc", "ciphertext")
	put(t, client, "db/2030-01-01.manifest.json", fmt.Sprintf(`{"end": %q}`, old.Add(-time.Minute).Format(time.RFC3339)))
	srv.UseRealTime()

	// A 400ms timeout: a listing and the posture calls per attempt, under
	// -race on a busy machine.
	p := mkProbe("backup-fresh", "backup_age", "backups", 500*time.Millisecond, map[string]any{"max_age": "26h"})
	r := runOnce(t, env, p)
	mustFail(t, "3-day-old backup", r, "over max_age 1d2h")
	if r.Details["time_source"] != "manifest" || r.Details["versioning"] != "off" || r.Observations["versioning_enabled"] != 0 {
		t.Errorf("details %v observations %v", r.Details, r.Observations)
	}
	if age := r.Observations["age_seconds"]; age < 72*3600 || age > 72*3600+300 {
		t.Errorf("age %.0fs, want the manifest's end (72h and a minute ago)", age)
	}
	if got := gauge(env.Metrics.BackupAge, "shop", "backups"); got < 72*3600 {
		t.Errorf("drguard_backup_age_seconds = %v", got)
	}

	_, rec := startScheduler(t, env, p)
	d := rec.waitStatus(t, p.Name, detect.StatusFiring, 5*time.Second)
	if d.Evidence.Details["versioning"] != "off" {
		t.Errorf("evidence does not report versioning off: %v", d.Evidence.Details)
	}
	put(t, client, "db/2030-01-04.dump.zst.enc", "ciphertext")
	put(t, client, "db/2030-01-04.manifest.json", fmt.Sprintf(`{"end": %q}`, time.Now().UTC().Format(time.RFC3339Nano)))
	rec.waitStatus(t, p.Name, detect.StatusResolved, 5*time.Second)
	if got := gauge(env.Metrics.BackupAge, "shop", "backups"); got > 60 {
		t.Errorf("drguard_backup_age_seconds = %v after a fresh upload", got)
	}
	if got := gauge(env.Metrics.BackupLastSuccess, "shop", "backups"); float64(time.Now().Unix())-got > 60 {
		t.Errorf("drguard_backup_last_success_timestamp_seconds = %v", got)
	}

	strict := mkProbe("strict", "backup_age", "backups", time.Second, map[string]any{"max_age": "26h", "require_versioning": true})
	mustFail(t, "require_versioning while off", runOnce(t, env, strict), "versioning is off")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("backups"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	r = runOnce(t, env, strict)
	mustOK(t, "require_versioning while on", r)
	if r.Details["versioning"] != "enabled" || r.Observations["versioning_enabled"] != 1 {
		t.Errorf("versioning not reported on: %v %v", r.Details, r.Observations)
	}
	t.Logf("posture reported: versioning=%s encryption=%s replication=%s",
		r.Details["versioning"], r.Details["encryption"], r.Details["replication"])
}

// TestBackupAgeWithoutManifests falls back to LastModified and fails on an
// empty prefix.
func TestBackupAgeWithoutManifests(t *testing.T) {
	srv, client, env := s3Env(t)
	srv.SetNow(time.Now().Add(-2 * time.Hour))
	put(t, client, "db/base.tar", "x")
	srv.UseRealTime()
	r := runOnce(t, env, mkProbe("b", "backup_age", "backups", time.Second, map[string]any{"max_age": "3h", "skip_posture": true}))
	mustOK(t, "2h-old object", r)
	if r.Details["time_source"] != "last_modified" || r.Observations["age_seconds"] < 7000 {
		t.Errorf("details %v observations %v", r.Details, r.Observations)
	}
	mustFail(t, "empty prefix", runOnce(t, env, mkProbe("e", "backup_age", "empty", time.Second,
		map[string]any{"max_age": "1h"})), "no backups under s3://backups/none/")
}

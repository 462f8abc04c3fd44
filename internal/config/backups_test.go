package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// pgTargetsWithReplica is pgTargets plus a scratch server and a replica
// recovery source for the service, so that 6-hourly backups are a warning.
const pgTargetsWithReplica = `targets:
  postgres:
    - {name: db, service: svc, dsn: "${TEST_DSN}"}
    - {name: scratch, dsn: "${TEST_DSN}"}
  s3: [{name: bucket, bucket: b}]
  aws: [{name: aws, region: us-east-1}]
objectives:
  svc:
    rpo: 1h
    rto: 4h
    recovery_sources: [{type: replica, target: db}]
`

func TestBackupPipelineDefaults(t *testing.T) {
	t.Setenv("TEST_DSN", "postgres://u:p@h/db")
	c := mustParse(t, webhookAuth+pgTargetsWithReplica+`backups: [{name: b, target: db, destination: bucket, key_file: /etc/hostname}]
restore_tests: [{name: r, backup: b, interval: 1d, scratch_target: scratch}]
`)
	b, r := c.Backups[0], c.RestoreTests[0]
	if b.PartSizeMB != 8 || b.Concurrency != 4 || b.HeartbeatTable != "drguard_heartbeat" || b.Timeout != b.Interval {
		t.Errorf("backup defaults = %+v", b)
	}
	if r.Jobs != 2 || r.Timeout != model.Duration(4*time.Hour) {
		t.Errorf("restore test defaults = %+v", r)
	}
}

func TestBackupPlanLint(t *testing.T) {
	t.Setenv("TEST_DSN", "postgres://u:p@h/db")
	targets := func(sources string) string {
		return `targets:
  postgres:
    - {name: db, service: svc, dsn: "${TEST_DSN}"}
    - {name: replica, service: svc, dsn: "${TEST_DSN}"}
    - {name: scratch, dsn: "${TEST_DSN}"}
  s3: [{name: bucket, bucket: b, endpoint: "http://127.0.0.1:9000"}]
  aws: [{name: aws, region: us-east-1}]
objectives:
  svc:
    rpo: 1h
    rto: 4h
` + sources
	}
	const backup6h = "backups: [{name: b, target: db, destination: bucket, interval: 6h, key_file: /etc/hostname, sse: AES256}]\n" +
		"restore_tests: [{name: r, backup: b, interval: 1d, scratch_target: scratch}]\n"

	ps := parseErr(t, webhookAuth+targets("")+backup6h, knownExecHTTP())
	wantAll(t, ps.Error(), "backups[0].interval: backups every 6h cannot meet RPO 1h: add PITR/WAL archiving or a replica, or back up at least hourly")

	c := mustParse(t, webhookAuth+targets(`    recovery_sources:
      - {type: pitr, target: aws, rds_instance: prod}
      - {type: replica, target: replica}
`)+backup6h)
	wantAll(t, c.Warnings().Error(),
		`backups[0].interval: backups every 6h cannot meet RPO 1h on their own: service "svc" relies on PITR of prod and replica replica for it`,
		`backups[0].destination: destination "bucket" is reached over unencrypted HTTP`,
		`replica "replica" has no postgres_replication probe`)

	// A second, hourly backup of the service meets the RPO by itself.
	c = mustParse(t, webhookAuth+targets("")+strings.Replace(backup6h, "}]\nrestore",
		"}, {name: hourly, target: db, destination: bucket, interval: 1h, key_file: /etc/hostname, sse: AES256}]\nrestore", 1))
	if w := c.Warnings().Error(); contains(w, "cannot meet RPO") {
		t.Errorf("an hourly backup meets the RPO, got:\n%s", w)
	}
}

func TestRecoverySourceValidation(t *testing.T) {
	t.Setenv("TEST_DSN", "postgres://u:p@h/db")
	base := `targets:
  postgres: [{name: db, service: svc, dsn: "${TEST_DSN}"}]
  aws: [{name: aws}]
objectives:
  svc:
    rpo: 1h
    rto: 4h
    recovery_sources:
      - {type: pitr, target: aws}
      - {type: replica, target: nope}
      - {type: pitr, target: db, rds_instance: x}
      - {type: wal, target: db}
      - {type: replica, target: db, rds_instance: x}
restore_tests: [{name: r, backup: b, interval: 1d, jobs: -1}]
backups: [{name: b, target: db, destination: s, key_file: /etc/hostname, part_size_mb: 1, concurrency: 100, sse: rot13, sse_kms_key_id: k, heartbeat_table: "x;drop"}]
`
	ps := parseErr(t, webhookAuth+base, knownExecHTTP())
	wantAll(t, ps.Error(),
		"recovery_sources[0].rds_instance: rds_instance is required for pitr",
		`recovery_sources[1].target: undefined postgres target "nope" in the replica recovery source of service "svc"`,
		`recovery_sources[2].target: undefined aws target "db" in the pitr recovery source`,
		`recovery_sources[3].type: unknown recovery source type "wal": want replica or pitr`,
		"recovery_sources[4].rds_instance: rds_instance applies to type pitr only",
		"restore_tests[0].scratch_target: scratch_target is required",
		"restore_tests[0].jobs: must be at least 1",
		"backups[0].part_size_mb: must be between 5 and 5120",
		"backups[0].concurrency: must be between 1 and 64",
		`backups[0].sse: unknown sse "rot13"`,
		"backups[0].sse_kms_key_id: sse_kms_key_id needs sse: aws:kms",
		`backups[0].heartbeat_table: "x;drop" is not a table name`,
	)
}

func TestRestoreTestScratchTarget(t *testing.T) {
	t.Setenv("TEST_DSN", "postgres://u:p@h/db")
	yml := webhookAuth + pgTargetsWithReplica + `backups: [{name: b, target: db, destination: bucket, key_file: /etc/hostname}]
restore_tests: [{name: r, backup: b, interval: 1d, scratch_target: %s}]
`
	ps := parseErr(t, sprintf(yml, "bucket"), knownExecHTTP())
	wantAll(t, ps.Error(), `restore_tests[0].scratch_target: undefined postgres target "bucket" in restore test "r"`)
	c := mustParse(t, sprintf(yml, "db"))
	wantAll(t, c.Warnings().Error(), `restore test "r" restores into "db", the server it backs up`)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Defaults of the backup pipeline and restore tests.
const (
	DefaultBackupPartSizeMB   = 8
	DefaultBackupConcurrency  = 4
	DefaultHeartbeatTable     = "drguard_heartbeat"
	DefaultRestoreTestJobs    = 2
	DefaultRestoreTestTimeout = model.Duration(4 * time.Hour)
	// DefaultCatalogTimeout bounds a read of a backup's catalog, unless a
	// quarter of the backup's interval is shorter.
	DefaultCatalogTimeout = model.Duration(30 * time.Second)
)

// Server-side encryption modes of a backup.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// tableNameRE is "table" or "schema.table" of plain identifiers.
var tableNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*(\.[a-zA-Z_][a-zA-Z0-9_]*)?$`)

// applyBackupDefaults fills the backup pipeline and restore test defaults.
func applyBackupDefaults(c *Config) {
	for i := range c.Backups {
		b := &c.Backups[i]
		if b.PartSizeMB == 0 {
			b.PartSizeMB = DefaultBackupPartSizeMB
		}
		if b.Concurrency == 0 {
			b.Concurrency = DefaultBackupConcurrency
		}
		setString(&b.HeartbeatTable, DefaultHeartbeatTable)
		setDuration(&b.Timeout, b.Interval)
		catalog := DefaultCatalogTimeout
		if b.Interval > 0 {
			catalog = min(catalog, b.Interval/4)
		}
		setDuration(&b.CatalogTimeout, catalog)
	}
	for i := range c.RestoreTests {
		r := &c.RestoreTests[i]
		if r.Jobs == 0 {
			r.Jobs = DefaultRestoreTestJobs
		}
		setDuration(&r.Timeout, DefaultRestoreTestTimeout)
	}
}

// backupSettings checks a backup's pipeline settings.
func (v *validator) backupSettings(path string, b Backup) {
	if b.PartSizeMB < 5 || b.PartSizeMB > 5120 {
		v.ps.errorf(joinPath(path, "part_size_mb"), "must be between 5 and 5120 (S3's part size limits)")
	}
	if b.Concurrency < 1 || b.Concurrency > 64 {
		v.ps.errorf(joinPath(path, "concurrency"), "must be between 1 and 64")
	}
	switch b.SSE {
	case "", SSEAES256, SSEKMS:
	default:
		v.ps.errorf(joinPath(path, "sse"), "unknown sse %q: want AES256 or aws:kms (or leave it out)", b.SSE)
	}
	if b.SSEKMSKeyID != "" && b.SSE != SSEKMS {
		v.ps.errorf(joinPath(path, "sse_kms_key_id"), "sse_kms_key_id needs sse: aws:kms")
	}
	if !tableNameRE.MatchString(b.HeartbeatTable) {
		v.ps.errorf(joinPath(path, "heartbeat_table"), "%q is not a table name (table or schema.table)", b.HeartbeatTable)
	}
	v.positive(joinPath(path, "timeout"), b.Timeout)
	v.positive(joinPath(path, "catalog_timeout"), b.CatalogTimeout)
	if b.Interval > 0 && b.CatalogTimeout >= b.Interval {
		v.ps.errorf(joinPath(path, "catalog_timeout"), "must be shorter than the interval (%s): a destination that cannot be read is counted as a failed run", b.Interval)
	}
}

// restoreTestSettings checks a restore test's own settings.
func (v *validator) restoreTestSettings(path string, r RestoreTest) {
	if r.ScratchTarget == "" {
		v.ps.errorf(joinPath(path, "scratch_target"), "scratch_target is required: the postgres target on which drguard may CREATE DATABASE a scratch copy")
	}
	if r.Jobs < 1 {
		v.ps.errorf(joinPath(path, "jobs"), "must be at least 1")
	}
	v.positive(joinPath(path, "timeout"), r.Timeout)
}

// recoverySources checks the recovery sources of one objective.
func (v *validator) recoverySources(path string, o Objective) {
	v.nonNegative(joinPath(path, "rto_overhead"), o.RTOOverhead)
	for i, s := range o.RecoverySources {
		p := indexPath(joinPath(path, "recovery_sources"), i)
		switch s.Type {
		case RecoverySourceReplica:
			if s.RDSInstance != "" {
				v.ps.errorf(joinPath(p, "rds_instance"), "rds_instance applies to type pitr only")
			}
		case RecoverySourcePITR:
			if s.RDSInstance == "" {
				v.ps.errorf(joinPath(p, "rds_instance"), "rds_instance is required for pitr: the DB instance whose LatestRestorableTime drguard watches")
			}
		case "":
			v.ps.errorf(joinPath(p, "type"), "type is required: replica or pitr")
		default:
			v.ps.errorf(joinPath(p, "type"), "unknown recovery source type %q: want replica or pitr", s.Type)
		}
		if s.Target == "" {
			v.ps.errorf(joinPath(p, "target"), "target is required: the replica's postgres target, or the aws target of the RDS instance")
		}
	}
}

// recoveryRefs checks the names that recovery sources and restore tests use.
func (v *validator) recoveryRefs() {
	t := &v.c.Targets
	for _, svc := range sortedKeys(v.c.Objectives) {
		for i, s := range v.c.Objectives[svc].RecoverySources {
			p := joinPath(indexPath(joinPath(joinPath("objectives", svc), "recovery_sources"), i), "target")
			switch {
			case s.Target == "":
			case s.Type == RecoverySourceReplica && !t.hasKind(s.Target, KindPostgres):
				v.ps.errorf(p, "undefined postgres target %q in the replica recovery source of service %q", s.Target, svc)
			case s.Type == RecoverySourceReplica && !v.hasProbe("postgres_replication", s.Target):
				v.ps.warnf(p, "replica %q has no postgres_replication probe: its exposure (drguard_rpo_exposure_seconds{source=\"replica\"}) is not measured", s.Target)
			case s.Type == RecoverySourcePITR && !t.hasKind(s.Target, KindAWS):
				v.ps.errorf(p, "undefined aws target %q in the pitr recovery source of service %q", s.Target, svc)
			}
		}
	}
	backups := map[string]Backup{}
	for _, b := range v.c.Backups {
		backups[b.Name] = b
	}
	for i, r := range v.c.RestoreTests {
		p := joinPath(indexPath("restore_tests", i), "scratch_target")
		switch {
		case r.ScratchTarget == "":
		case !t.hasKind(r.ScratchTarget, KindPostgres):
			v.ps.errorf(p, "undefined postgres target %q in restore test %q", r.ScratchTarget, r.Name)
		case r.ScratchTarget == backups[r.Backup].Target:
			v.ps.warnf(p, "restore test %q restores into %q, the server it backs up: the test loads production; use a separate scratch server", r.Name, r.ScratchTarget)
		}
	}
}

// hasProbe reports whether a probe of the given type watches target.
func (v *validator) hasProbe(typ, target string) bool {
	for _, p := range v.c.Probes {
		if p.Type == typ && p.Target == target {
			return true
		}
	}
	return false
}

// backupPlan lints a backup against its service's objectives: can the
// service meet its RPO, and is the destination encrypted at rest.
func (v *validator) backupPlan(path string, b Backup) {
	o := v.c.Objectives[b.Service]
	if o.RPO > 0 && b.Interval > o.RPO && !v.fasterBackup(b.Service, o.RPO) {
		if len(o.RecoverySources) == 0 {
			v.ps.errorf(joinPath(path, "interval"), "backups every %s cannot meet RPO %s: add PITR/WAL archiving or a replica, or back up at least %s",
				b.Interval, o.RPO, every(o.RPO))
		} else {
			v.ps.warnf(joinPath(path, "interval"), "backups every %s cannot meet RPO %s on their own: service %q relies on %s for it (watch drguard_rpo_exposure_seconds)",
				b.Interval, o.RPO, b.Service, describeSources(o.RecoverySources))
		}
	}
	for _, d := range v.c.Targets.S3 {
		if d.Name != b.Destination {
			continue
		}
		if strings.HasPrefix(d.Endpoint, "http://") {
			v.ps.warnf(joinPath(path, "destination"), "destination %q is reached over unencrypted HTTP (%s): backup contents are encrypted by drguard, but object names, sizes and credentials' requests are not", d.Name, d.Endpoint)
		}
	}
	if b.SSE == "" {
		v.ps.warnf(joinPath(path, "sse"), "destination %q is unencrypted at rest by the store: drguard encrypts the backups (AES-256), but set sse: AES256 or aws:kms for a second layer", b.Destination)
	}
}

// fasterBackup reports whether another backup of service runs at least as
// often as rpo.
func (v *validator) fasterBackup(service string, rpo model.Duration) bool {
	for _, b := range v.c.Backups {
		if b.Service == service && b.Interval > 0 && b.Interval <= rpo {
			return true
		}
	}
	return false
}

// every words a backup interval: hourly, daily, or every 30m.
func every(d model.Duration) string {
	switch time.Duration(d) {
	case time.Hour:
		return "hourly"
	case 24 * time.Hour:
		return "daily"
	}
	return "every " + d.String()
}

// describeSources names recovery sources for a message.
func describeSources(srcs []RecoverySource) string {
	parts := make([]string, len(srcs))
	for i, s := range srcs {
		switch s.Type {
		case RecoverySourcePITR:
			parts[i] = fmt.Sprintf("PITR of %s", s.RDSInstance)
		default:
			parts[i] = fmt.Sprintf("%s %s", s.Type, s.Target)
		}
	}
	return strings.Join(parts, " and ")
}

package action

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// PostgresBackup takes a backup now, with the pipeline and settings of a
// configured backup (pg_dump → zstd → AES-256 streaming AEAD → S3, and a
// manifest), e.g. before a risky remediation step. The running daemon's
// backup scheduler picks the new backup up from object storage, so
// freshness metrics follow.
//
// Params: backup (a backups[].name; default: the one backup of the run's
// target).
//
// Result: backup, backup_id, target, object, raw_bytes, stored_bytes,
// duration_seconds, recovery_point (RFC 3339, when the target has a
// heartbeat table).
type PostgresBackup struct {
	svc *backup.Service
}

// backupInfo declares a backup harmless and safe to repeat: another backup
// changes nothing but adds a recovery point.
var backupInfo = Info{Destructive: false, Idempotent: true}

// backupParams is the params of postgres.backup.
type backupParams struct {
	// Backup names a backups[] entry (default: the run's target's one).
	Backup string `param:"backup"`
}

func (*backupParams) check(params.Templates) error { return nil }

// newPostgresBackup builds the postgres.backup action on the injected
// backup service (the daemon's, with its journal, metrics and per-target
// lock). It does no I/O.
func newPostgresBackup(d Deps) (RunFunc[backupParams], error) {
	return (&PostgresBackup{svc: d.Backups}).run, nil
}

// run takes the backup.
func (a *PostgresBackup) run(ctx context.Context, req Request, p *backupParams) (Outcome, error) {
	if a.svc == nil {
		return Outcome{}, errors.New("postgres.backup: no backup service was given to the actions")
	}
	name := cmp.Or(p.Backup, req.Target)
	if name == "" {
		return Outcome{}, params.Required("backup", "the run has no target")
	}
	m, err := a.svc.Backup(ctx, name, backup.TriggerAction)
	if err != nil {
		return Outcome{}, err
	}
	res := map[string]any{
		"backup": m.Backup, "backup_id": m.ID, "target": m.Target, "object": "s3://" + m.Bucket + "/" + m.Object,
		"raw_bytes": m.Sizes.Raw, "stored_bytes": m.Sizes.Stored, "duration_seconds": m.End.Sub(m.Start).Seconds(),
	}
	if m.Heartbeat != nil {
		res["recovery_point"] = m.Heartbeat.Format(time.RFC3339Nano)
	}
	return Outcome{
		Output: fmt.Sprintf("backup %s/%s of %s: %d bytes dumped, %d stored in %s", m.Backup, m.ID, m.Target,
			m.Sizes.Raw, m.Sizes.Stored, res["object"]),
		Result: res,
	}, nil
}

// preflightPostgresBackup checks that the backup is configured and its
// target connects.
func preflightPostgresBackup(d Deps) PreflightFunc[backupParams] {
	return func(ctx context.Context, req Request, p *backupParams) Preflight {
		var pf Preflight
		name := cmp.Or(p.Backup, req.Target)
		for _, b := range d.Config.Backups {
			if b.Name != name && b.Target != name {
				continue
			}
			pf.pass("backup", b.Name, "backup %s of %s to %s is configured", b.Name, b.Target, b.Destination)
			for _, t := range d.Config.Targets.Postgres {
				if t.Name == b.Target {
					if conn, _, ok := pgPreflight(ctx, t, &pf); ok {
						_ = conn.Close(context.WithoutCancel(ctx))
					}
				}
			}
			return pf
		}
		pf.fail("backup", name, "no backup named %q (or of target %q) is configured", name, name)
		return pf
	}
}

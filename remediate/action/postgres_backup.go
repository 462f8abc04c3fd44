package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/config"
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
	log *slog.Logger
}

var _ Action = (*PostgresBackup)(nil)

// NewPostgresBackup builds the postgres.backup action. It does no I/O.
func NewPostgresBackup(d Deps) (Action, error) {
	cfg := d.Config
	if cfg == nil {
		cfg = &config.Config{}
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	svc, err := backup.New(backup.Options{Config: cfg, Logger: log.With("action", "postgres.backup")})
	if err != nil {
		return nil, err
	}
	return &PostgresBackup{svc: svc, log: log}, nil
}

// Info declares a backup harmless and safe to repeat: another backup
// changes nothing but adds a recovery point.
func (*PostgresBackup) Info() Info { return Info{Destructive: false, Idempotent: true} }

// Validate checks the unrendered params.
func (*PostgresBackup) Validate(params map[string]any) error {
	if err := checkKnown(params, "backup"); err != nil {
		return err
	}
	_, err := stringParam(params, "backup", "")
	return err
}

// Run takes the backup.
func (a *PostgresBackup) Run(ctx context.Context, req Request) (Outcome, error) {
	name, err := stringParam(req.Params, "backup", "")
	if err != nil {
		return Outcome{}, err
	}
	if name == "" {
		name = req.Target
	}
	if name == "" {
		return Outcome{}, errors.New("param backup is required when the run has no target")
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

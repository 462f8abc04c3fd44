package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// scratchPrefix starts the name of every scratch database.
const scratchPrefix = "drguard_rt_"

// Verify runs the restore test configured for the backup called name (or
// the backup of the target called name).
func (s *Service) Verify(ctx context.Context, name string) (Verification, error) {
	b, err := s.Lookup(name)
	if err != nil {
		return Verification{}, err
	}
	for _, rt := range s.cfg.RestoreTests {
		if rt.Backup == b.Name {
			return s.RestoreTest(ctx, rt)
		}
	}
	return Verification{}, fmt.Errorf("backup %s has no restore test: add a restore_tests entry with its scratch_target", b.Name)
}

// RestoreTest restores the newest backup of rt's backup into a new scratch
// database on rt's scratch server, runs the backup target's
// postgres_integrity checks on it, reads the newest heartbeat inside it,
// drops it, and records the result beside the manifest, in the journal and
// in metrics. The backup is authenticated in full before the scratch
// database is created. The returned error is the test's failure, if any.
func (s *Service) RestoreTest(ctx context.Context, rt config.RestoreTest) (Verification, error) {
	b, err := s.Lookup(rt.Backup)
	if err != nil {
		return Verification{}, err
	}
	done, err := s.begin("restore test " + rt.Name)
	if err != nil {
		return Verification{}, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(rt.Timeout))
	defer cancel()
	v := Verification{Format: manifestFormat, Backup: b.Name, Target: b.Target, Service: b.Service,
		RestoreTest: rt.Name, Start: s.now().UTC()}
	o, err := s.objects(ctx, b)
	if err == nil {
		err = s.restoreTest(ctx, rt, b, o, &v)
	}
	v.End = s.now().UTC()
	v.DurationSeconds = v.End.Sub(v.Start).Seconds()
	v.OK = err == nil
	if err != nil {
		v.Error = err.Error()
	}
	s.finishTest(ctx, b, o, v)
	if err != nil {
		return v, fmt.Errorf("restore test %s: %w", rt.Name, err)
	}
	return v, nil
}

// restoreTest does the work of RestoreTest, filling v.
func (s *Service) restoreTest(ctx context.Context, rt config.RestoreTest, b config.Backup, o *objectStore, v *Verification) error {
	cat, err := readCatalog(ctx, o, &s.cache)
	if err != nil {
		return err
	}
	m, ok := cat.latest()
	if !ok {
		return fmt.Errorf("backup %s has no backups yet in %s", b.Name, o.url(o.prefix))
	}
	v.BackupID = m.ID
	scratch, err := s.targetConn(rt.ScratchTarget)
	if err != nil {
		return err
	}
	pgRestore, err := findTool(b.BinDir, "pg_restore")
	if err != nil {
		return err
	}
	// Authenticate the whole backup before creating anything.
	path, cleanup, err := s.fetch(ctx, b, o, m)
	defer cleanup()
	if err != nil {
		return err
	}
	db := scratchPrefix + strings.ToLower(strings.NewReplacer("-", "_").Replace(m.ID))
	admin, err := connect(ctx, scratch)
	if err != nil {
		return fmt.Errorf("scratch server %s: %v", rt.ScratchTarget, err)
	}
	defer closeConn(admin)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("create scratch database %s on %s: %v", db, rt.ScratchTarget, scratch.redactErr(err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := admin.Exec(cctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			s.log.Error("cannot drop scratch database", "database", db, "server", rt.ScratchTarget, "err", scratch.redactErr(err))
		}
	}()
	into := scratch.with("dbname", db)
	if err := s.pgRestore(ctx, pgRestore, path, m.Sizes.Raw, into, rt.Jobs, "--exit-on-error", "--no-password", "--no-owner", "--no-privileges"); err != nil {
		return fmt.Errorf("restore %s/%s into scratch database %s: %w", b.Name, m.ID, db, err)
	}
	cleanup()
	v.Checks, err = s.integrityChecks(ctx, b.Target, into)
	if err != nil {
		return err
	}
	v.RecoveryPoint, v.RecoveryPointSource = m.Start, "dump_start"
	c, err := connect(ctx, into)
	if err != nil {
		return fmt.Errorf("scratch database %s: %v", db, err)
	}
	defer closeConn(c)
	ts, ok, err := newestHeartbeat(ctx, c, b.HeartbeatTable)
	if err != nil {
		return fmt.Errorf("read heartbeat %s in the restored copy: %v", b.HeartbeatTable, into.redactErr(err))
	}
	if ok {
		v.RecoveryPoint, v.RecoveryPointSource = ts, "heartbeat"
	}
	return nil
}

// IntegrityCheck runs the integrity checks configured for target (its
// postgres_integrity probes) against a restored copy of its database,
// reached with dsn, and returns each check's outcome; an error names the
// failed ones. The daemon and the CLI inject the probes' checker, so that
// backup does not reach up into detect/probe.
type IntegrityCheck func(ctx context.Context, target string, dsn config.Secret) (map[string]string, error)

// integrityChecks runs the injected integrity checks on the restored copy;
// without a checker there are none.
func (s *Service) integrityChecks(ctx context.Context, target string, copyConn conninfo) (map[string]string, error) {
	if s.integrity == nil {
		return nil, nil
	}
	checks, err := s.integrity(ctx, target, config.Secret(copyConn.String()))
	if err != nil {
		return checks, errors.New(copyConn.redact(err.Error()))
	}
	return checks, nil
}

// finishTest records a restore test: beside the manifest (so that state
// survives restarts), in the journal and in metrics.
func (s *Service) finishTest(ctx context.Context, b config.Backup, o *objectStore, v Verification) {
	log := s.log.With("restore_test", v.RestoreTest, "backup", b.Name, "id", v.BackupID)
	result := metrics.BackupSuccess
	if !v.OK {
		result = metrics.BackupFailure
		log.Error("restore test failed", "err", v.Error, "duration", v.DurationSeconds)
	} else {
		log.Info("restore test passed", "duration", v.DurationSeconds, "recovery_point", v.RecoveryPoint,
			"recovery_point_source", v.RecoveryPointSource)
	}
	if mt := s.metrics; mt != nil {
		mt.RestoreTestRuns.WithLabelValues(b.Service, b.Target, result).Inc()
	}
	if o != nil && v.BackupID != "" {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if err := writeRecord(wctx, o, o.prefix+v.BackupID+VerificationSuffix, v, b.SSE, b.SSEKMSKeyID); err != nil {
			log.Error("cannot store the restore test's result", "err", err)
		}
		cancel()
	}
	s.noteVerification(b, v)
	run := store.RestoreTestRun{Name: v.RestoreTest, Backup: b.Name, Target: b.Target, Service: b.Service,
		BackupID: v.BackupID, Start: v.Start, End: v.End, Result: store.BackupSucceeded, Error: v.Error, Checks: v.Checks}
	if !v.OK {
		run.Result = store.BackupFailed
	} else {
		run.RecoveryPoint, run.RecoveryPointAge = v.RecoveryPoint, v.End.Sub(v.RecoveryPoint).Seconds()
	}
	s.record("restore test", func(tx *store.Tx) error { return tx.PutRestoreTestRun(&run) })
}

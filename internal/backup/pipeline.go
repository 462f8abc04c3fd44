package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// What started a backup, as journaled.
const (
	TriggerSchedule = "schedule"
	TriggerCLI      = "cli"
	TriggerAction   = "action"
)

// Backup takes one backup of the configured backup called name (or of the
// one backup of the target called name) and returns its manifest. A failed
// run leaves no manifest and no partial object; it is counted, logged and
// journaled like a successful one.
func (s *Service) Backup(ctx context.Context, name, trigger string) (Manifest, error) {
	b, err := s.Lookup(name)
	if err != nil {
		return Manifest{}, err
	}
	done, err := s.begin("backup " + b.Name)
	if err != nil {
		return Manifest{}, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.Timeout))
	defer cancel()

	run := store.BackupRun{Backup: b.Name, Target: b.Target, Service: b.Service, Trigger: trigger, Start: s.now().UTC()}
	m, err := s.backup(ctx, b, &run)
	run.End = s.now().UTC()
	log := s.log.With("backup", b.Name, "target", b.Target, "id", run.BackupID)
	if err != nil {
		run.Result, run.Error = store.BackupFailed, err.Error()
		if mt := s.metrics; mt != nil {
			mt.Runs.WithLabelValues(b.Service, b.Target, metrics.BackupFailure).Inc()
		}
		log.Error("backup failed", "err", err, "duration", run.End.Sub(run.Start))
		s.record("backup run", func(tx *store.Tx) error { return tx.PutBackupRun(&run) })
		return Manifest{}, fmt.Errorf("backup %s: %w", b.Name, err)
	}
	run.Result, run.Object, run.StoredBytes = store.BackupSucceeded, m.Object, m.Sizes.Stored
	if mt := s.metrics; mt != nil {
		mt.Runs.WithLabelValues(b.Service, b.Target, metrics.BackupSuccess).Inc()
	}
	s.noteBackup(b, m)
	log.Info("backup done", "object", "s3://"+m.Bucket+"/"+m.Object, "raw_bytes", m.Sizes.Raw,
		"stored_bytes", m.Sizes.Stored, "duration", m.End.Sub(m.Start))
	s.record("backup run", func(tx *store.Tx) error { return tx.PutBackupRun(&run) })
	return m, nil
}

// backup runs the pipeline and writes the manifest.
func (s *Service) backup(ctx context.Context, b config.Backup, run *store.BackupRun) (Manifest, error) {
	key, err := LoadKey(b.KeyFile)
	if err != nil {
		return Manifest{}, err
	}
	conn, err := s.targetConn(b.Target)
	if err != nil {
		return Manifest{}, err
	}
	pgDump, err := findTool(b.BinDir, "pg_dump")
	if err != nil {
		return Manifest{}, err
	}
	o, err := s.objects(ctx, b)
	if err != nil {
		return Manifest{}, err
	}
	// Read the heartbeat before pg_dump takes its snapshot: the dump then
	// holds at least the data up to it.
	version, hb, err := serverFacts(ctx, conn, b.HeartbeatTable)
	if err != nil {
		return Manifest{}, fmt.Errorf("postgres target %s (%s): %v", b.Target, conn.describe(), err)
	}
	start := s.now().UTC()
	id := newID(start)
	run.BackupID = id
	m := Manifest{
		Format: manifestFormat, ID: id, Backup: b.Name, Target: b.Target, Service: b.Service,
		Start: start, PostgresVersion: version, KeyID: key.ID(), Encryption: Encryption,
		Compression: "zstd", DumpFormat: "pg_dump -Fc -Z0", Heartbeat: hb, HeartbeatTable: b.HeartbeatTable,
		Bucket: o.bucket, Object: o.prefix + id + DataSuffix, SSE: b.SSE,
	}
	sizes, sum, err := s.stream(ctx, b, key, conn, pgDump, o, m.Object, associatedData(b.Name, id))
	if err != nil {
		return Manifest{}, err
	}
	if got, err := o.size(ctx, m.Object); err != nil {
		return Manifest{}, err
	} else if got != sizes.Stored {
		s.removeQuietly(ctx, o, m.Object)
		return Manifest{}, fmt.Errorf("uploaded object %s has %d bytes, the pipeline wrote %d", o.url(m.Object), got, sizes.Stored)
	}
	m.Sizes, m.SHA256, m.End = sizes, sum, s.now().UTC()
	if err := writeRecord(ctx, o, o.prefix+id+ManifestSuffix, m, b.SSE, b.SSEKMSKeyID); err != nil {
		// Without a manifest the data object is an orphan; retention
		// removes orphans, but try now.
		s.removeQuietly(ctx, o, m.Object)
		return Manifest{}, fmt.Errorf("data uploaded but manifest not written: %v", err)
	}
	return m, nil
}

// serverFacts returns the server's version and its newest heartbeat.
func serverFacts(ctx context.Context, conn conninfo, table string) (string, *time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*connectTimeout)
	defer cancel()
	c, err := connect(ctx, conn)
	if err != nil {
		return "", nil, err
	}
	defer closeConn(c)
	var version string
	if err := c.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return "", nil, conn.redactErr(err)
	}
	ts, ok, err := newestHeartbeat(ctx, c, table)
	if err != nil {
		return "", nil, fmt.Errorf("read heartbeat table %s: %v", table, conn.redactErr(err))
	}
	if !ok {
		return version, nil, nil
	}
	return version, &ts, nil
}

// stream runs pg_dump → zstd frames → AEAD → sha256 → multipart upload,
// each stage an io.Writer over the next, so memory stays bounded by the
// frames in flight (compressFrames), one AEAD segment and the uploader's
// parts. It returns the sizes and the digest of the stored bytes.
func (s *Service) stream(ctx context.Context, b config.Backup, key *Key, conn conninfo, pgDump string,
	o *objectStore, objKey string, aad []byte) (Sizes, string, error) {
	dumpCtx, stopDump := context.WithCancel(ctx)
	defer stopDump()
	cmd, stderr := toolCommand(dumpCtx, pgDump, conn, "-Fc", "-Z0", "--no-password")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Sizes{}, "", err
	}
	growPipe(stdout)
	if err := cmd.Start(); err != nil {
		return Sizes{}, "", fmt.Errorf("start pg_dump: %v", err)
	}
	var raw, compressed, stored counter
	hash := sha256.New()
	pr, pw := io.Pipe()
	stop := progressLine(s.progress, "backup "+b.Name, &raw, &stored)
	produced := make(chan error, 1)
	go func() {
		err := func() error {
			enc, err := key.encrypt(countingWriter{io.MultiWriter(hash, pw), &stored}, aad)
			if err != nil {
				return err
			}
			if err := compressFrames(countingWriter{enc, &compressed}, countingReader{stdout, &raw}, frameWorkers(), frameChunk); err != nil {
				stopDump()
				_ = cmd.Wait()
				return err
			}
			// pg_dump's exit status decides: a dump that ended early must
			// not be sealed into a valid-looking stream.
			if err := cmd.Wait(); err != nil {
				return toolError("pg_dump", err, stderr, conn)
			}
			return enc.Close()
		}()
		pw.CloseWithError(err)
		produced <- err
	}()
	upErr := o.upload(ctx, objKey, pr, int64(b.PartSizeMB)<<20, b.Concurrency, b.SSE, b.SSEKMSKeyID)
	if upErr != nil {
		// Stop pg_dump too: the producer may be blocked reading it.
		pr.CloseWithError(upErr)
		stopDump()
	}
	prodErr := <-produced
	stop()
	switch {
	case prodErr != nil && upErr != nil:
		return Sizes{}, "", fmt.Errorf("%v (upload aborted)", prodErr)
	case prodErr != nil:
		// The upload cannot have completed without the producer's EOF.
		return Sizes{}, "", prodErr
	case upErr != nil:
		return Sizes{}, "", upErr
	}
	return Sizes{Raw: raw.n.Load(), Compressed: compressed.n.Load(), Stored: stored.n.Load()},
		hex.EncodeToString(hash.Sum(nil)), nil
}

// removeQuietly deletes an object on a failure path, with its own deadline.
func (s *Service) removeQuietly(ctx context.Context, o *objectStore, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := o.remove(ctx, key); err != nil {
		s.log.Warn("cannot remove object of a failed backup", "object", o.url(key), "err", err)
	}
}

// pipeSize is the kernel buffer asked for pg_dump's stdout: fewer, larger
// reads and fewer context switches than the default 64 KiB.
const pipeSize = 1 << 20

// growPipe enlarges a pipe's kernel buffer when it is one; failure (a
// lower /proc/sys/fs/pipe-max-size) only costs speed.
func growPipe(r io.Reader) {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return
	}
	if rc, err := sc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}

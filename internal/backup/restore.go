package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// IntegrityError is a backup that failed authentication: tampered,
// truncated, corrupted, or encrypted with another key. Nothing was
// restored.
type IntegrityError struct {
	Backup, ID string
	Reason     string
}

// Error says which backup failed and why, and that nothing was touched.
func (e *IntegrityError) Error() string {
	return fmt.Sprintf("backup %s/%s failed verification, refusing to restore it (the destination was not touched): %s", e.Backup, e.ID, e.Reason)
}

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	// Backup is the configured backup's name (or its target's name).
	Backup string
	// ID is a backup ID, or "" or "latest" for the newest.
	ID string
	// Into is the destination database's connection string. The database
	// must exist; it should be empty.
	Into string
	// Jobs is pg_restore's -j, and the number of connections that load a
	// large dump's rows (default 2).
	Jobs int
	// NoOwner restores without ownership and privileges (--no-owner
	// --no-privileges), for a server that lacks the original roles.
	NoOwner bool
}

// Restore downloads a backup, authenticates all of it (sha256 of the
// stored bytes and every AEAD segment) while decrypting and decompressing
// it to a temporary file, and only then restores it into the destination
// (pgRestore: pg_restore -j N, a large dump's rows over N connections). A
// tampered or truncated backup yields an *IntegrityError before the
// destination is touched.
func (s *Service) Restore(ctx context.Context, o RestoreOptions) (Manifest, error) {
	b, err := s.Lookup(o.Backup)
	if err != nil {
		return Manifest{}, err
	}
	into, err := parseConninfo(o.Into)
	if err != nil {
		return Manifest{}, fmt.Errorf("--into: %v", err)
	}
	objs, err := s.objects(ctx, b)
	if err != nil {
		return Manifest{}, err
	}
	cat, err := readCatalog(ctx, objs, &s.cache)
	if err != nil {
		return Manifest{}, err
	}
	m, ok := cat.find(o.ID)
	if !ok {
		if len(cat.Manifests) == 0 {
			return Manifest{}, fmt.Errorf("backup %s has no backups in %s", b.Name, objs.url(objs.prefix))
		}
		return Manifest{}, fmt.Errorf("backup %s has no backup %q (newest: %s)", b.Name, o.ID, cat.Manifests[len(cat.Manifests)-1].ID)
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = config.DefaultRestoreTestJobs
	}
	start := s.now()
	err = s.restore(ctx, b, objs, m, into, jobs, o.NoOwner)
	s.log.Info("restore", "backup", b.Name, "id", m.ID, "into", into.describe(), "duration", s.now().Sub(start), "err", err)
	return m, err
}

// restore fetches and authenticates m, then runs pg_restore into conn.
func (s *Service) restore(ctx context.Context, b config.Backup, o *objectStore, m Manifest, into conninfo, jobs int, noOwner bool) error {
	pgRestore, err := findTool(b.BinDir, "pg_restore")
	if err != nil {
		return err
	}
	start := s.now()
	path, cleanup, err := s.fetch(ctx, b, o, m)
	defer cleanup()
	if err != nil {
		return err
	}
	s.log.Info("restore authenticated", "backup", b.Name, "id", m.ID, "raw_bytes", m.Sizes.Raw, "duration", s.now().Sub(start))
	opts := []string{"--exit-on-error", "--no-password"}
	if noOwner {
		opts = append(opts, "--no-owner", "--no-privileges")
	}
	if err := s.pgRestore(ctx, pgRestore, path, m.Sizes.Raw, into, jobs, opts...); err != nil {
		return fmt.Errorf("restore %s/%s into %s: %w", b.Name, m.ID, into.describe(), err)
	}
	return nil
}

// fetch downloads m's object and writes the decrypted, decompressed dump to
// a temporary file, checking on the way that every byte authenticates and
// that the object is exactly the one the manifest describes. cleanup
// removes the file and is never nil.
func (s *Service) fetch(ctx context.Context, b config.Backup, o *objectStore, m Manifest) (path string, cleanup func(), err error) {
	cleanup = func() {}
	fail := func(format string, args ...any) error {
		return &IntegrityError{Backup: b.Name, ID: m.ID, Reason: fmt.Sprintf(format, args...)}
	}
	if m.Encryption != Encryption || m.Compression != "zstd" {
		return "", cleanup, fmt.Errorf("backup %s/%s uses %s with %s, which this drguard cannot read", b.Name, m.ID, m.Encryption, m.Compression)
	}
	key, err := LoadKey(b.KeyFile)
	if err != nil {
		return "", cleanup, err
	}
	if key.ID() != m.KeyID {
		return "", cleanup, fail("it was encrypted with key %s, but key_file %s holds key %s", m.KeyID, b.KeyFile, key.ID())
	}
	body, size, err := o.get(ctx, m.Object)
	if err != nil {
		return "", cleanup, err
	}
	defer body.Close()
	if size != m.Sizes.Stored {
		return "", cleanup, fail("the object has %d bytes, the manifest says %d (truncated or replaced)", size, m.Sizes.Stored)
	}
	f, err := os.CreateTemp(s.tempDir, "drguard-restore-*.dump")
	if err != nil {
		return "", cleanup, fmt.Errorf("temporary file for the restore: %v", err)
	}
	cleanup = func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	var stored, raw counter
	hash := sha256.New()
	src := io.TeeReader(countingReader{body, &stored}, hash)
	stop := progressLine(s.progress, "restore "+b.Name+"/"+m.ID, &stored, &raw)
	// Each frame is written at its place by the goroutine that decoded it.
	// The file is scratch and is not flushed: a restore that ends within
	// the kernel's dirty expiry (30 s by default) removes it before any of
	// it reaches the disk, and a larger one is written back as any large
	// file is (flushing it first made restores slower; docs/benchmarks.md).
	err = decryptTo(countingWriterAt{f, &raw}, src, key, associatedData(b.Name, m.ID))
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return "", cleanup, ctx.Err()
		}
		var ie *integrityReason
		if errors.As(err, &ie) {
			return "", cleanup, fail("%s, after reading %d of %d stored bytes (tampered, corrupted or truncated)", ie.msg, stored.n.Load(), m.Sizes.Stored)
		}
		return "", cleanup, fmt.Errorf("restore %s/%s: %v", b.Name, m.ID, err)
	}
	switch sum := hex.EncodeToString(hash.Sum(nil)); {
	case stored.n.Load() != m.Sizes.Stored:
		return "", cleanup, fail("read %d bytes, the manifest says %d (truncated)", stored.n.Load(), m.Sizes.Stored)
	case sum != m.SHA256:
		return "", cleanup, fail("sha256 of the object is %s, the manifest says %s", sum, m.SHA256)
	case raw.n.Load() != m.Sizes.Raw:
		return "", cleanup, fail("the dump has %d bytes, the manifest says %d", raw.n.Load(), m.Sizes.Raw)
	}
	if err := f.Close(); err != nil {
		return "", cleanup, fmt.Errorf("temporary file for the restore: %v", err)
	}
	return f.Name(), cleanup, nil
}

// integrityReason marks an error as the data failing authentication or
// decoding, as opposed to I/O on the local file.
type integrityReason struct{ msg string }

func (e *integrityReason) Error() string { return e.msg }

// decryptTo authenticates, decrypts and decompresses src into dst (see
// decodeFrames), then reads src to its end so that every segment (the
// last, marked one included) and every byte is authenticated and hashed.
func decryptTo(dst io.WriterAt, src io.Reader, key *Key, aad []byte) error {
	dec, err := key.decrypt(src, aad)
	if err != nil {
		return &integrityReason{"cannot read the encryption header: " + err.Error()}
	}
	if _, err := decodeFrames(dst, dec, frameWorkers()); err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, dec)
	switch {
	case err != nil:
		return &integrityReason{"authentication failed after the end of the compressed data: " + err.Error()}
	case n != 0:
		return &integrityReason{fmt.Sprintf("%d authenticated bytes follow the end of the compressed data", n)}
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return err
	}
	return nil
}

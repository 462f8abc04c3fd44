// Package backup takes encrypted streaming backups of PostgreSQL targets,
// proves that they restore and applies retention. It reports facts — each
// backup and each restore test, with the recovery point found inside the
// restored data and how long the restore took — to its metrics and to the
// recovery objectives (metrics.Objectives), which own the RPO exposure and
// the RTO estimate.
//
// A backup is pg_dump's custom format (uncompressed, -Z0) streamed through
// zstd, then Tink's streaming AEAD (AES-256-GCM with HKDF, 1 MiB segments),
// then an S3 multipart upload, in constant memory. A manifest object is
// written beside the data only once the upload has completed. Restores
// authenticate the whole object (sha256 and AEAD) before touching the
// destination. Restore tests restore the newest backup into a scratch
// database, run the target's integrity checks, read the newest heartbeat
// inside it and record the result beside the manifest. All state — the
// freshness of backups, which are verified, the last restore-test
// duration — is rebuilt from object storage, so a restart resets nothing.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// Options configure a Service. Only Config is required.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Metrics receives backup and restore-test metrics; nil disables them.
	Metrics *metrics.Backups
	// Objectives receives every passed restore test (its recovery point
	// and duration), from which the RPO exposure of the backup source and
	// the RTO estimate are computed; nil reports none.
	Objectives *metrics.Objectives
	// Journal records backup runs, restore tests and retention deletions:
	// a *store.Store, or in the daemon the leader's fenced journal, so that
	// a deposed leader records and deletes nothing. Nil disables it
	// (retention then refuses to delete).
	Journal Journal
	// S3Client builds S3 clients; nil means NewS3Client.
	S3Client S3ClientFunc
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TempDir holds restore files (the decrypted dump); "" means the
	// system's temporary directory. It needs room for one raw dump.
	TempDir string
	// RefreshInterval is how often Run re-reads object storage (default
	// 1m).
	RefreshInterval time.Duration
	// Progress receives a progress line during long runs (a terminal);
	// nil prints nothing.
	Progress io.Writer
	// Integrity runs the target's integrity checks on a restore test's
	// copy; nil runs none.
	Integrity IntegrityCheck
}

// Journal is where the service records what it does.
type Journal interface {
	Update(fn func(*store.Tx) error) error
}

// Service runs backups, restores, restore tests and retention for the
// configuration's backups.
type Service struct {
	cfg        *config.Config
	log        *slog.Logger
	metrics    *metrics.Backups
	objectives *metrics.Objectives
	journal    Journal
	s3Func     S3ClientFunc
	now        func() time.Time
	tempDir    string
	// splitMin is the size of a dump from which a restore loads the
	// tables' rows itself (splitRestoreMin; tests lower it).
	splitMin int64
	refresh  time.Duration
	progress io.Writer
	// integrity checks a restored copy.
	integrity IntegrityCheck

	mu      sync.Mutex
	clients map[string]*s3.Client
	cache   recordCache
	// lastTest is, per backup, the end of the newest passed restore test
	// whose metrics are exported.
	lastTest map[string]time.Time
	running  map[string]bool // backups and restore tests in progress
	sched    map[string]*schedState
	changed  chan struct{} // closed and replaced when sched changes
}

// New returns a Service. It does no I/O: clients are created on first use.
func New(o Options) (*Service, error) {
	if o.Config == nil {
		return nil, errors.New("backup: no configuration")
	}
	s := &Service{
		cfg: o.Config, log: o.Logger, metrics: o.Metrics, objectives: o.Objectives, journal: o.Journal,
		s3Func: o.S3Client, now: o.Now, tempDir: o.TempDir, splitMin: splitRestoreMin,
		refresh: o.RefreshInterval, progress: o.Progress, integrity: o.Integrity,
		clients: map[string]*s3.Client{}, lastTest: map[string]time.Time{}, running: map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.s3Func == nil {
		s.s3Func = NewS3Client
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.refresh <= 0 {
		s.refresh = time.Minute
	}
	return s, nil
}

// Lookup returns the configured backup called name, or the one backup of
// the target called name.
func (s *Service) Lookup(name string) (config.Backup, error) {
	var byTarget []config.Backup
	for _, b := range s.cfg.Backups {
		if b.Name == name {
			return b, nil
		}
		if b.Target == name {
			byTarget = append(byTarget, b)
		}
	}
	switch len(byTarget) {
	case 1:
		return byTarget[0], nil
	case 0:
		return config.Backup{}, fmt.Errorf("no backup named %q and none of a target %q in the configuration", name, name)
	}
	return config.Backup{}, fmt.Errorf("target %q has %d backups: name one of them", name, len(byTarget))
}

// postgresTarget returns the postgres target called name.
func (s *Service) postgresTarget(name string) (config.PostgresTarget, error) {
	for _, t := range s.cfg.Targets.Postgres {
		if t.Name == name {
			return t, nil
		}
	}
	if len(s.cfg.Targets.Kinds(name)) > 0 {
		return config.PostgresTarget{}, fmt.Errorf("target %q is not a postgres target: only PostgreSQL backups are supported", name)
	}
	return config.PostgresTarget{}, fmt.Errorf("undefined postgres target %q", name)
}

// targetConn parses a postgres target's DSN.
func (s *Service) targetConn(name string) (conninfo, error) {
	t, err := s.postgresTarget(name)
	if err != nil {
		return nil, err
	}
	c, err := parseConninfo(t.DSN.Reveal())
	if err != nil {
		return nil, fmt.Errorf("postgres target %q: %v", name, err)
	}
	return c, nil
}

// objects returns the object store of a backup: its destination's bucket,
// under "<prefix><backup name>/".
func (s *Service) objects(ctx context.Context, b config.Backup) (*objectStore, error) {
	var t config.S3Target
	found := false
	for _, x := range s.cfg.Targets.S3 {
		if x.Name == b.Destination {
			t, found = x, true
		}
	}
	if !found {
		return nil, fmt.Errorf("backup %q: undefined s3 target %q", b.Name, b.Destination)
	}
	s.mu.Lock()
	client := s.clients[t.Name]
	s.mu.Unlock()
	if client == nil {
		c, err := s.s3Func(ctx, t)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.clients[t.Name] == nil {
			s.clients[t.Name] = c
		}
		client = s.clients[t.Name]
		s.mu.Unlock()
	}
	return &objectStore{client: client, bucket: t.Bucket, prefix: t.Prefix + b.Name + "/"}, nil
}

// Catalog returns the manifests of a backup, oldest first.
func (s *Service) Catalog(ctx context.Context, name string) ([]Manifest, error) {
	b, err := s.Lookup(name)
	if err != nil {
		return nil, err
	}
	o, err := s.objects(ctx, b)
	if err != nil {
		return nil, err
	}
	c, err := readCatalog(ctx, o, &s.cache)
	if err != nil {
		return nil, err
	}
	return c.Manifests, nil
}

// begin marks name as running; it fails when it already is, so that a
// scheduled run, a CLI-triggered action and a retry never overlap in one
// process.
func (s *Service) begin(name string) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[name] {
		return nil, fmt.Errorf("%s is already running", name)
	}
	s.running[name] = true
	return func() {
		s.mu.Lock()
		delete(s.running, name)
		s.mu.Unlock()
	}, nil
}

// record writes to the journal when there is one; a failure is logged, not
// returned: the backup itself is the record that matters.
func (s *Service) record(what string, fn func(*store.Tx) error) {
	if s.journal == nil {
		return
	}
	if err := s.journal.Update(fn); err != nil {
		s.log.Error("cannot journal "+what, "err", err)
	}
}

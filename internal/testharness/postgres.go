package testharness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PG is a PostgreSQL primary with a streaming replica (unless NoReplica was
// given), each a postgres process run as the postgres OS user when the tests
// run as root. Its knobs fail the test that started it on error.
type PG struct {
	// BinDir holds the PostgreSQL server binaries (postgres, initdb, pg_ctl…).
	BinDir string
	// PrimaryDataDir and ReplicaDataDir are the data directories.
	PrimaryDataDir, ReplicaDataDir string
	// PrimaryPort and ReplicaPort are the TCP ports on 127.0.0.1.
	PrimaryPort, ReplicaPort int
	// SocketDir holds both servers' unix sockets.
	SocketDir string
	// PrimaryLog and ReplicaLog are the servers' log files.
	PrimaryLog, ReplicaLog string

	t               testing.TB
	user            *osUser
	primary         *process
	replica         *process
	primaryConninfo string // the replica's original primary_conninfo
	replayPaused    bool
	receiverStopped bool
	promoted        bool
}

// PGOption changes how Postgres starts.
type PGOption func(*pgOptions)

type pgOptions struct {
	conf      []string
	noReplica bool
	port      int // the primary's first port; 0: a free one
}

// PGConf adds a setting to the primary's postgresql.conf (the replica copies
// it), e.g. PGConf("archive_mode", "on").
func PGConf(name, value string) PGOption {
	return func(o *pgOptions) {
		o.conf = append(o.conf, fmt.Sprintf("%s = '%s'", name, strings.ReplaceAll(value, "'", "''")))
	}
}

// NoReplica starts only the primary.
func NoReplica() PGOption { return func(o *pgOptions) { o.noReplica = true } }

// Postgres starts a primary and a streaming replica on free ports in a
// temporary directory, from a cached initdb template, and returns once the
// replica streams. Both are stopped in t.Cleanup.
func Postgres(t testing.TB, opts ...PGOption) *PG {
	t.Helper()
	var o pgOptions
	for _, opt := range opts {
		opt(&o)
	}
	binDir, err := findPGBinDir()
	if err != nil {
		Need(t, "PostgreSQL server binaries (apt-get install postgresql)", err)
	}
	u, err := lookupRunAs("postgres")
	if err != nil {
		Need(t, "the postgres OS user (apt-get install postgresql)", err)
	}
	template, err := pgTemplate(binDir, u)
	if err != nil {
		t.Fatalf("testharness: postgres template: %v", err)
	}
	root := shortTempDir(t)
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	p := &PG{
		BinDir:         binDir,
		PrimaryDataDir: filepath.Join(root, "p"),
		ReplicaDataDir: filepath.Join(root, "r"),
		SocketDir:      filepath.Join(root, "s"),
		PrimaryLog:     filepath.Join(root, "primary.log"),
		ReplicaLog:     filepath.Join(root, "replica.log"),
		PrimaryPort:    o.port,
		t:              t,
		user:           u,
	}
	if p.PrimaryPort == 0 {
		p.PrimaryPort = FreePort(t)
	}
	dumpLogOnFailure(t, "postgres primary", p.PrimaryLog)
	if err := os.Mkdir(p.SocketDir, 0o755); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	if err := u.chownTree(p.SocketDir); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	if out, err := runCmd(nil, "cp", "-a", template, p.PrimaryDataDir); err != nil {
		t.Fatalf("testharness: copy postgres template: %v: %s", err, out)
	}
	conf := append([]string{
		"port = " + strconv.Itoa(p.PrimaryPort),
		fmt.Sprintf("unix_socket_directories = '%s'", p.SocketDir),
	}, o.conf...)
	if err := appendLines(filepath.Join(p.PrimaryDataDir, "postgresql.conf"), conf); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	t.Cleanup(p.stopAll)
	p.primary = p.startNew("postgres primary", p.PrimaryDataDir, p.PrimaryLog, &p.PrimaryPort)
	if o.noReplica {
		return p
	}
	p.startReplica()
	return p
}

// PrimaryDSN returns a connection URL for database db on the primary.
func (p *PG) PrimaryDSN(db string) string { return pgDSN(p.PrimaryPort, db) }

// ReplicaDSN returns a connection URL for database db on the replica.
func (p *PG) ReplicaDSN(db string) string { return pgDSN(p.ReplicaPort, db) }

// pgDSN returns a connection URL for database db on the local port.
func pgDSN(port int, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, db)
}

// CreateDB creates database name on the primary and, when the replica is
// streaming and replaying (not paused, receiver on, not promoted), waits until
// the replica has it too.
func (p *PG) CreateDB(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Exec(ctx, p.PrimaryDSN("postgres"), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		p.t.Fatalf("testharness: create database %s: %v", name, err)
	}
	if p.replica != nil && !p.replica.exited() && !p.replayPaused && !p.receiverStopped && !p.promoted {
		p.WaitReplicaCaughtUp()
	}
}

// Exec runs sql (with optional arguments) on a new connection to dsn.
func (p *PG) Exec(ctx context.Context, dsn, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// Query runs sql on a new connection to dsn and returns every row's values.
func (p *PG) Query(ctx context.Context, dsn, sql string, args ...any) ([][]any, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// QueryRow runs sql (without arguments: use Query for those) on a new
// connection to dsn and scans the one row into dest.
func (p *PG) QueryRow(ctx context.Context, dsn, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

// StopPrimary stops the primary the way `pg_ctl stop -m mode` would: "smart",
// "fast" or "immediate" (a crash: no shutdown checkpoint).
func (p *PG) StopPrimary(mode string) {
	p.t.Helper()
	if err := stopPG(p.primary, mode); err != nil {
		p.t.Fatalf("testharness: stop primary: %v", err)
	}
}

// StartPrimary starts the primary (again) and waits until it accepts queries.
func (p *PG) StartPrimary() {
	p.t.Helper()
	if p.primary != nil && !p.primary.exited() {
		p.t.Fatalf("testharness: primary is already running")
	}
	p.primary = p.startServer("postgres primary", p.PrimaryDataDir, p.PrimaryLog, p.PrimaryDSN("postgres"))
}

// startServer runs postgres -D dataDir and waits until dsn answers SELECT 1.
func (p *PG) startServer(name, dataDir, logPath, dsn string) *process {
	p.t.Helper()
	proc, err := p.tryStart(name, dataDir, logPath, dsn)
	if err != nil {
		p.t.Fatalf("testharness: %s: %v", name, err)
	}
	return proc
}

// startNew starts a new server for the first time, on *port. A port that
// FreePort found free may be taken by another process before postgres
// binds it; the server then moves to another free port (the last "port ="
// line of postgresql.conf wins) and starts again, up to three times.
func (p *PG) startNew(name, dataDir, logPath string, port *int) *process {
	p.t.Helper()
	for try := 1; ; try++ {
		proc, err := p.tryStart(name, dataDir, logPath, pgDSN(*port, "postgres"))
		if err == nil {
			return proc
		}
		if try == 3 || !strings.Contains(logTail(logPath, 10), "Address already in use") {
			p.t.Fatalf("testharness: %s: %v", name, err)
		}
		*port = FreePort(p.t)
		if err := appendLines(filepath.Join(dataDir, "postgresql.conf"), []string{"port = " + strconv.Itoa(*port)}); err != nil {
			p.t.Fatalf("testharness: %v", err)
		}
	}
}

// tryStart runs postgres -D dataDir and waits until dsn answers SELECT 1.
func (p *PG) tryStart(name, dataDir, logPath, dsn string) (*process, error) {
	proc, err := startProcess(procSpec{name: name, bin: filepath.Join(p.BinDir, "postgres"),
		args: []string{"-D", dataDir}, dir: dataDir, logPath: logPath, cred: p.user.cred,
		env: []string{"HOME=" + p.user.home, "LC_ALL=C"}})
	if err != nil {
		return nil, err
	}
	err = waitReady(context.Background(), proc, func(ctx context.Context) error {
		return p.Exec(ctx, dsn, "SELECT 1")
	})
	if err != nil {
		proc.stop(syscall.SIGQUIT, 5*time.Second)
		return nil, err
	}
	return proc, nil
}

// replicaSQLUntil runs sql on the replica, then polls until check returns true.
func (p *PG) replicaSQLUntil(sql, check string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := p.Exec(ctx, p.ReplicaDSN("postgres"), sql); err != nil {
		p.t.Fatalf("testharness: replica: %s: %v", sql, err)
	}
	p.waitFor(check, func(ctx context.Context) (bool, error) {
		var ok bool
		err := p.QueryRow(ctx, p.ReplicaDSN("postgres"), check, &ok)
		return ok, err
	})
}

// waitFor polls cond for up to 30 s and fails the test if it stays false.
func (p *PG) waitFor(what string, cond func(context.Context) (bool, error)) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var lastErr error
	for {
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := cond(qctx)
		qcancel()
		if ok && err == nil {
			return
		}
		lastErr = err
		select {
		case <-ctx.Done():
			p.t.Fatalf("testharness: timed out waiting for %s (last error: %v)", what, lastErr)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stopAll stops the replica and the primary.
func (p *PG) stopAll() {
	for _, proc := range []*process{p.replica, p.primary} {
		if proc != nil {
			proc.stop(syscall.SIGINT, 10*time.Second)
		}
	}
}

// stopPG stops a postgres server with a pg_ctl stop mode and waits for it.
func stopPG(proc *process, mode string) error {
	sig := map[string]syscall.Signal{"smart": syscall.SIGTERM, "fast": syscall.SIGINT, "immediate": syscall.SIGQUIT}[mode]
	if sig == 0 {
		return fmt.Errorf("unknown stop mode %q (want smart, fast or immediate)", mode)
	}
	if proc == nil || proc.exited() {
		return errors.New("not running")
	}
	if err := proc.signal(sig); err != nil {
		return err
	}
	return proc.wait(30 * time.Second)
}

// findPGBinDir returns $DRGUARD_PG_BINDIR or the newest
// /usr/lib/postgresql/*/bin that has the server binaries.
func findPGBinDir() (string, error) {
	if d := os.Getenv("DRGUARD_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[i])), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[j])), 64)
		return vi > vj
	})
	for _, d := range dirs {
		ok := true
		for _, b := range []string{"postgres", "initdb", "pg_basebackup"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", errors.New("no /usr/lib/postgresql/*/bin with postgres, initdb and pg_basebackup (or set DRGUARD_PG_BINDIR)")
}

// appendLines appends lines to a file.
func appendLines(path string, lines []string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n" + strings.Join(lines, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

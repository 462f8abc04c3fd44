package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// applicationName identifies drguard's backup sessions in pg_stat_activity.
const applicationName = "drguard-backup"

// connectTimeout bounds connecting to PostgreSQL, for pgx and the tools.
const connectTimeout = 30 * time.Second

// findTool returns the path of a PostgreSQL client program: in binDir when
// set, else on $PATH.
func findTool(binDir, name string) (string, error) {
	if binDir != "" {
		p := filepath.Join(binDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s not found in bin_dir %s", name, binDir)
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found on $PATH (install the PostgreSQL client, or set bin_dir)", name)
	}
	return p, nil
}

// toolCommand prepares a PostgreSQL client program against conn: the
// connection (without password) as -d, the password in PGPASSWORD. ctx
// ending sends SIGTERM, then SIGKILL after a grace period.
func toolCommand(ctx context.Context, path string, conn conninfo, args ...string) (*exec.Cmd, *tailBuffer) {
	if conn["connect_timeout"] == "" {
		conn = conn.with("connect_timeout", fmt.Sprint(int(connectTimeout.Seconds())))
	}
	if conn["application_name"] == "" {
		conn = conn.with("application_name", applicationName)
	}
	dsn, env := conn.command()
	cmd := exec.CommandContext(ctx, path, append([]string{"-d", dsn}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	return cmd, stderr
}

// toolError describes a failed PostgreSQL program: its exit status and the
// end of its stderr, with the password removed.
func toolError(name string, err error, stderr *tailBuffer, conn conninfo) error {
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	status := err.Error()
	if errors.As(err, &ee) {
		status = ee.ProcessState.String()
	}
	if msg == "" {
		return fmt.Errorf("%s: %s", name, conn.redact(status))
	}
	return fmt.Errorf("%s: %s: %s", name, conn.redact(status), conn.redact(msg))
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// Write appends p, dropping the oldest bytes beyond max.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// connect opens a pgx connection to conn with drguard's application name.
func connect(ctx context.Context, conn conninfo) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(conn.String())
	if err != nil {
		return nil, errors.New(conn.redact(err.Error()))
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = applicationName
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > connectTimeout {
		cfg.ConnectTimeout = connectTimeout
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, errors.New(conn.redact(err.Error()))
	}
	return c, nil
}

// closeConn closes c with a short deadline of its own.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// sqlState returns the SQLSTATE of a PostgreSQL error, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// stateUndefinedTable is SQLSTATE 42P01.
const stateUndefinedTable = "42P01"

// quoteTable quotes "table" or "schema.table".
func quoteTable(name string) string {
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}

// newestHeartbeat reads max(ts) of the heartbeat table; ok is false when
// the table is missing or empty.
func newestHeartbeat(ctx context.Context, c *pgx.Conn, table string) (t time.Time, ok bool, err error) {
	var ts *time.Time
	err = c.QueryRow(ctx, "SELECT max(ts) FROM "+quoteTable(table)).Scan(&ts)
	switch {
	case sqlState(err) == stateUndefinedTable:
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, err
	case ts == nil:
		return time.Time{}, false, nil
	}
	return ts.UTC(), true, nil
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file holds what the postgres_* probes share: a pool per target,
// redaction of DSNs from error messages, and the heartbeat upsert.

// DefaultHeartbeatTable and DefaultHeartbeatID name the heartbeat row that
// postgres_heartbeat writes and postgres_replication reads.
const (
	DefaultHeartbeatTable = "drguard_heartbeat"
	DefaultHeartbeatID    = "drguard"
)

// applicationName identifies drguard's sessions in pg_stat_activity.
const applicationName = "drguard-probe"

// redactor removes a target's secrets from messages.
type redactor []string

// newRedactor returns a redactor for a DSN and the password it holds.
func newRedactor(dsn, password string) redactor {
	r := redactor{dsn}
	if len(password) >= 3 {
		r = append(r, password)
	}
	return r
}

// msg returns err's message with every secret replaced by "<secret>".
func (r redactor) msg(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	for _, secret := range r {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<secret>")
		}
	}
	return s
}

// pgConfig parses t's DSN into a connection config with drguard's
// application_name, and returns the redactor for its secrets.
func pgConfig(t config.PostgresTarget) (*pgx.ConnConfig, redactor, error) {
	dsn := t.DSN.Reveal()
	if dsn == "" {
		return nil, nil, fmt.Errorf("postgres target %q has no dsn", t.Name)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres target %q: invalid dsn: %s", t.Name, newRedactor(dsn, "").msg(err))
	}
	red := newRedactor(dsn, cfg.Password)
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = applicationName
	}
	return cfg, red, nil
}

// compilePostgres resolves a postgres probe's target and parses its DSN
// once, when the probe is compiled.
func compilePostgres(c *config.Config, name string) (pgTarget, error) {
	t, err := postgresTarget(c, name)
	if err != nil {
		return pgTarget{}, err
	}
	cfg, red, err := pgConfig(t)
	if err != nil {
		return pgTarget{}, err
	}
	return pgTarget{name: t.Name, cfg: cfg, red: red}, nil
}

// pgTarget is a postgres target as a compiled probe holds it.
type pgTarget struct {
	name string
	cfg  *pgx.ConnConfig
	red  redactor
}

// pgPool returns the pool for t, creating it on first use. The pool
// connects lazily, so creating it does no I/O.
func (e Env) pgPool(t pgTarget) (*pgxpool.Pool, error) {
	pool, err := cached(e, func(s *shared) map[string]*pgxpool.Pool { return s.pg }, t.name, func() (*pgxpool.Pool, error) {
		pc, err := pgxpool.ParseConfig("")
		if err != nil {
			return nil, err
		}
		pc.ConnConfig = t.cfg.Copy()
		pc.MaxConns = 4
		pc.MinConns = 0
		pc.MaxConnIdleTime = 2 * time.Minute
		pc.HealthCheckPeriod = time.Minute
		return pgxpool.NewWithConfig(context.Background(), pc)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres target %q: %s", t.name, t.red.msg(err))
	}
	return pool, nil
}

// pgErrorMessage describes a PostgreSQL error without secrets: SQLSTATE and
// message for server errors, the redacted error otherwise.
func pgErrorMessage(err error, red redactor) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out: " + red.msg(err)
	}
	return red.msg(err)
}

// sqlState returns the SQLSTATE of a PostgreSQL error, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// SQLSTATE codes the probes act on.
const (
	stateUndefinedTable = "42P01"
	stateReadOnlySQLTxn = "25006"
	stateUndefinedFunc  = "42883"
)

// querier is what the heartbeat needs from a connection or a pool.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// quoteTable quotes "table" or "schema.table" as an SQL identifier.
func quoteTable(name string) string {
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}

// upsertHeartbeat writes (id, now()) to table and returns the time
// written. When the table is missing and create is set, it creates it
// first.
func upsertHeartbeat(ctx context.Context, q querier, table, id string, create bool) (time.Time, error) {
	qt := quoteTable(table)
	upsert := "INSERT INTO " + qt + " (id, ts) VALUES ($1, now()) " +
		"ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts RETURNING ts"
	var ts time.Time
	err := q.QueryRow(ctx, upsert, id).Scan(&ts)
	if err != nil && create && sqlState(err) == stateUndefinedTable {
		if _, cerr := q.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+qt+" (id text PRIMARY KEY, ts timestamptz NOT NULL)"); cerr != nil {
			return time.Time{}, fmt.Errorf("create heartbeat table: %w", cerr)
		}
		err = q.QueryRow(ctx, upsert, id).Scan(&ts)
	}
	return ts, err
}

// heartbeatParams are the heartbeat settings shared by the postgres probes.
type heartbeatParams struct {
	// HeartbeatTable is the heartbeat table, "table" or "schema.table"
	// (default drguard_heartbeat).
	HeartbeatTable string `param:"heartbeat_table"`
	// HeartbeatID is the row's id (default "drguard").
	HeartbeatID string `param:"heartbeat_id"`
}

func (h *heartbeatParams) defaults() {
	h.HeartbeatTable, h.HeartbeatID = DefaultHeartbeatTable, DefaultHeartbeatID
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgBackend is the PostgreSQL journal, shared by every replica. Records
// are rows of journal_records, the outbox is journal_outbox, the lease is
// a row of journal_leases (migrations/). The pool reconnects by itself
// when the database comes back after an outage.
type pgBackend struct {
	pool *pgxpool.Pool
}

var _ backend = (*pgBackend)(nil)

const (
	// txTimeout bounds one journal transaction, so that a journal that
	// stops answering fails the caller instead of stalling it.
	txTimeout = 30 * time.Second
	// connectTimeout is the default bound on opening one connection.
	connectTimeout = 5 * time.Second
	// defaultMaxConns is the default pool size (pool_max_conns in the
	// DSN overrides it): intake's commit loops, the engine, the API's
	// reads and the lease.
	defaultMaxConns = pgCommitters + 6
	// writerLockKey is the transaction-level advisory lock every writing
	// transaction takes first: writers are serialised across replicas, as
	// bbolt serialises them in one process.
	writerLockKey int64 = 0x6472677561727701
)

// OpenPostgres connects to the PostgreSQL journal at dsn (a libpq URL or
// key=value string), brings its schema up to date and starts the commit
// loop. The database must be one of its own, never a database drguard
// guards. Errors never contain the DSN, which may hold a password.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	b, err := openPG(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return newStore(b), nil
}

func openPG(ctx context.Context, dsn string) (*pgBackend, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors quote the connection string.
		return nil, errors.New("postgres journal: the DSN does not parse as a libpq URL or key=value string")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if !hasPoolMaxConns(dsn) {
		cfg.MaxConns = defaultMaxConns
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "drguard"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres journal: %w", err)
	}
	mctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
	if err := migrate(mctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres journal %s: migrate the schema: %w", where(cfg), err)
	}
	return &pgBackend{pool: pool}, nil
}

// where names a journal database for messages: host, port and database,
// never the user or password.
func where(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

func (b *pgBackend) close() error {
	b.pool.Close()
	return nil
}

// ping checks that the journal answers and accepts writes (a standby, or a
// database set read-only, does not).
func (b *pgBackend) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
	var readOnly string
	if err := b.pool.QueryRow(ctx, "SELECT current_setting('transaction_read_only')").Scan(&readOnly); err != nil {
		return fmt.Errorf("postgres journal: %w", err)
	}
	if readOnly == "on" {
		return errors.New("postgres journal: the database is read-only (a standby?)")
	}
	return nil
}

// view runs fn in a read-only snapshot, as consistent as a bbolt read
// transaction.
func (b *pgBackend) view(fn func(kv) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	return pgx.BeginTxFunc(ctx, b.pool, opts, func(tx pgx.Tx) error {
		return fn(newPGKV(ctx, tx))
	})
}

// update serialises writers with a transaction-level advisory lock taken
// first, then (fenced) checks the lease. It runs at READ COMMITTED: every
// statement after the lock sees what every earlier writer committed, so
// fn reads and writes as if it were alone, and runs exactly once (a
// SERIALIZABLE transaction would have to be retried, running fn again).
func (b *pgBackend) update(fence *Lease, fn func(kv) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	opts := pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	return pgx.BeginTxFunc(ctx, b.pool, opts, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writerLockKey); err != nil {
			return fmt.Errorf("postgres journal: take the writer lock: %w", err)
		}
		if fence != nil {
			if err := checkFence(ctx, tx, *fence); err != nil {
				return err
			}
		}
		k := newPGKV(ctx, tx)
		if err := fn(k); err != nil {
			return err
		}
		return k.flush()
	})
}

// appendAlerts inserts a group of alerts into the outbox with one
// statement, an array unnested into rows in order: one round trip and one
// commit for every webhook of the group. (COPY takes two round trips; side
// by side it took 1.2-1.8 times as long per group.)
func (b *pgBackend) appendAlerts(ctx context.Context, payloads [][]byte) error {
	_, err := b.pool.Exec(ctx, "INSERT INTO journal_outbox (payload) SELECT p FROM unnest($1::bytea[]) WITH ORDINALITY AS a(p, n) ORDER BY n", payloads)
	if err != nil {
		return fmt.Errorf("postgres journal: outbox write: %w", err)
	}
	return nil
}

// pgCommitters is how many intake groups are written at once: while one
// group's insert waits for its commit to be flushed, the next is on its way.
const pgCommitters = 4

func (b *pgBackend) committers() int { return pgCommitters }

// trimOutbox has nothing to do: acknowledging an alert deletes its row.
func (b *pgBackend) trimOutbox() error { return nil }

func (b *pgBackend) pendingAlerts(limit int) ([]rawAlert, error) {
	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	rows, err := b.pool.Query(ctx, "SELECT seq, payload FROM journal_outbox ORDER BY seq LIMIT $1", lim)
	if err != nil {
		return nil, fmt.Errorf("postgres journal: read the outbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rawAlert, error) {
		var r rawAlert
		return r, row.Scan(&r.seq, &r.payload)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres journal: read the outbox: %w", err)
	}
	return out, nil
}

// hasPoolMaxConns reports whether the DSN sets the pool's size itself.
func hasPoolMaxConns(dsn string) bool { return strings.Contains(dsn, "pool_max_conns") }

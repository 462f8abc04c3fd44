package store

import (
	"context"
	"testing"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// The shared store suite: every test that calls forEachBackend runs once
// against the embedded journal and once against a PostgreSQL journal on a
// real server that the test harness starts in a temporary directory.

// journal opens one journal, again and again (after a Close, as after a
// restart), and, on a backend shared by replicas, as several at once.
type journal struct {
	// open opens the journal; the test closes what it opens.
	open func(t testing.TB) *Store
	// shared reports whether several Stores may have the journal open
	// at once (replicas); the embedded journal is locked by one process.
	shared bool
	// pg is the PostgreSQL server, nil for the embedded journal.
	pg *testharness.PG
	// dsn is the PostgreSQL journal's DSN.
	dsn string
}

// forEachBackend runs fn as a subtest per backend, each with a new journal.
func forEachBackend(t *testing.T, fn func(t *testing.T, j *journal)) {
	t.Run("embedded", func(t *testing.T) { fn(t, embeddedJournal(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgresJournal(t)) })
}

// embeddedJournal is a journal in a new temporary directory.
func embeddedJournal(t testing.TB) *journal {
	dir := t.TempDir()
	return &journal{open: func(t testing.TB) *Store {
		t.Helper()
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}}
}

// withFsync makes a PostgreSQL server durable, for benchmarks (the test
// harness turns fsync off).
var withFsync = []testharness.PGOption{testharness.PGConf("fsync", "on"), testharness.PGConf("full_page_writes", "on")}

// postgresJournal is a journal in a new database on a new PostgreSQL
// server (no replica) started with opts, stopped when the test ends.
func postgresJournal(t testing.TB, opts ...testharness.PGOption) *journal {
	pg := testharness.Postgres(t, append([]testharness.PGOption{testharness.NoReplica()}, opts...)...)
	pg.CreateDB("journal")
	j := &journal{shared: true, pg: pg, dsn: pg.PrimaryDSN("journal")}
	j.open = func(t testing.TB) *Store {
		t.Helper()
		s, err := OpenPostgres(context.Background(), j.dsn)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return j
}

// openT opens the journal and closes it when the test ends.
func (j *journal) openT(t testing.TB) *Store {
	t.Helper()
	s := j.open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

package store

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Tests of what only the PostgreSQL journal has: replicas, schema
// migrations, a server that goes away.

// TestOutboxGapIsNotSkipped checks the outbox gap: sequence values of
// concurrent intake transactions commit out of order, and an alert
// committed after a later-numbered one was processed is still processed.
func TestOutboxGapIsNotSkipped(t *testing.T) {
	j := postgresJournal(t)
	s := j.openT(t)
	ctx := context.Background()
	// Another replica's intake has taken a sequence value but not
	// committed yet.
	conn, err := pgx.Connect(ctx, j.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	slow, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	early := appendAlert(nil, &Alert{Fingerprint: "early", Status: "firing"})
	if _, err := slow.Exec(ctx, "INSERT INTO journal_outbox (payload) VALUES ($1)", early); err != nil {
		t.Fatal(err)
	}
	enqueue(t, s, "late")
	if got, want := pendingFingerprints(t, s), []string{"late@02"}; !slices.Equal(got, want) {
		t.Fatalf("pending before the slow commit: %v, want %v", got, want)
	}
	if err := s.Update(func(tx *Tx) error { return tx.AckAlert(2) }); err != nil {
		t.Fatal(err)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := pendingFingerprints(t, s), []string{"early@01"}; !slices.Equal(got, want) {
		t.Fatalf("pending after the slow commit: %v, want %v", got, want)
	}
}

// TestReplicasStartingTogetherMigrateOnce opens the journal from several
// replicas at once on an empty database: each schema version is applied
// once, and every replica works.
func TestReplicasStartingTogetherMigrateOnce(t *testing.T) {
	j := postgresJournal(t)
	const replicas = 4
	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = OpenPostgres(context.Background(), j.dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
		enqueue(t, stores[i], "x")
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := j.pg.Query(context.Background(), j.dsn, "SELECT version FROM journal_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(ms) {
		t.Fatalf("journal_migrations has %d rows, want one per version (%d)", len(rows), len(ms))
	}
}

// TestNewerSchemaIsRefused checks that a drguard older than the journal's
// schema refuses to open it rather than write what newer versions
// misread.
func TestNewerSchemaIsRefused(t *testing.T) {
	j := postgresJournal(t)
	j.openT(t)
	err := j.pg.Exec(context.Background(), j.dsn, "INSERT INTO journal_migrations (version, name) VALUES (999, '0999_future.sql')")
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenPostgres(context.Background(), j.dsn)
	if err == nil || !strings.Contains(err.Error(), "schema is at version 999") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

// TestJournalOutageFailsWritesAndRecovers stops the journal's server:
// Ping and intake fail (so /readyz and intake say so) without losing what
// was committed, and both work again once the server is back, on the same
// Store.
func TestJournalOutageFailsWritesAndRecovers(t *testing.T) {
	j := postgresJournal(t)
	s := j.openT(t)
	ctx := context.Background()
	enqueue(t, s, "before")
	j.pg.StopPrimary("immediate")
	if err := s.Ping(ctx); err == nil {
		t.Fatal("ping of a stopped journal succeeded")
	}
	if err := s.EnqueueAlerts(ctx, []Alert{{Fingerprint: "during"}}); err == nil {
		t.Fatal("enqueue into a stopped journal succeeded")
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutRun(&Run{}) }); err == nil {
		t.Fatal("update of a stopped journal succeeded")
	}
	j.pg.StartPrimary()
	deadline := time.Now().Add(10 * time.Second)
	for err := s.Ping(ctx); err != nil; err = s.Ping(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("ping after the journal came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	enqueue(t, s, "after")
	got := pendingFingerprints(t, s)
	if len(got) != 2 || !strings.HasPrefix(got[0], "before@") || !strings.HasPrefix(got[1], "after@") {
		t.Fatalf("pending after the outage: %v, want before and after", got)
	}
}

// TestBadDSNIsNotEchoed checks that a DSN that does not parse is reported
// without its text, which may hold a password.
func TestBadDSNIsNotEchoed(t *testing.T) {
	_, err := OpenPostgres(context.Background(), "postgres://u:s3cret@host:notaport/db")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("open with a bad DSN: %v", err)
	}
}

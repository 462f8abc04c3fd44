package testharness

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestPostgres(t *testing.T) {
	start := time.Now()
	pg := Postgres(t)
	t.Logf("postgres primary+replica ready in %s", time.Since(start))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg.CreateDB("app")
	primary, replica := pg.PrimaryDSN("app"), pg.ReplicaDSN("app")

	// A row written on the primary appears on the replica.
	if err := pg.Exec(ctx, primary, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	pg.WaitReplicaCaughtUp()
	var v string
	if err := pg.QueryRow(ctx, replica, "SELECT v FROM t WHERE id = 1", &v); err != nil || v != "one" {
		t.Fatalf("replica row = %q, %v", v, err)
	}
	var inRecovery bool
	if err := pg.QueryRow(ctx, replica, "SELECT pg_is_in_recovery()", &inRecovery); err != nil || !inRecovery {
		t.Fatalf("replica pg_is_in_recovery = %v, %v", inRecovery, err)
	}

	// Paused replay: bytes received but not replayed, on both sides.
	pg.PauseReplay()
	if err := pg.Exec(ctx, primary, "INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(2, 5000) g"); err != nil {
		t.Fatal(err)
	}
	var primaryLag, replicaLag int64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = pg.QueryRow(ctx, pg.PrimaryDSN("postgres"),
			"SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint FROM pg_stat_replication", &primaryLag)
		_ = pg.QueryRow(ctx, pg.ReplicaDSN("postgres"),
			"SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint", &replicaLag)
		if primaryLag > 0 && replicaLag > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if primaryLag <= 0 || replicaLag <= 0 {
		t.Fatalf("lag bytes with replay paused: primary %d, replica %d; want > 0", primaryLag, replicaLag)
	}
	pg.ResumeReplay()
	pg.WaitReplicaCaughtUp()

	// A stopped WAL receiver: no receiver row, no streaming replica.
	pg.StopWALReceiver()
	var receivers int
	if err := pg.QueryRow(ctx, pg.ReplicaDSN("postgres"), "SELECT count(*) FROM pg_stat_wal_receiver", &receivers); err != nil || receivers != 0 {
		t.Fatalf("pg_stat_wal_receiver rows = %d, %v; want 0", receivers, err)
	}
	if err := pg.Exec(ctx, primary, "INSERT INTO t VALUES (9001, 'unstreamed')"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	var n int
	if err := pg.QueryRow(ctx, replica, "SELECT count(*) FROM t WHERE id = 9001", &n); err != nil || n != 0 {
		t.Fatalf("row reached the replica with the receiver stopped: %d, %v", n, err)
	}
	pg.StartWALReceiver()
	pg.WaitReplicaCaughtUp()

	// Crash and restart the primary.
	pg.StopPrimary("immediate")
	if err := pg.Exec(ctx, primary, "SELECT 1"); err == nil {
		t.Fatal("primary answered after StopPrimary")
	}
	pg.StartPrimary()
	if err := pg.QueryRow(ctx, primary, "SELECT count(*) FROM t WHERE id = 9001", &n); err != nil || n != 1 {
		t.Fatalf("row after crash restart: %d, %v", n, err)
	}
}

func TestPostgresPromote(t *testing.T) {
	pg := Postgres(t)
	pg.StopPrimary("fast")
	pg.Promote()
	ctx := context.Background()
	if err := pg.Exec(ctx, pg.ReplicaDSN("postgres"), "CREATE TABLE after_promote (id int)"); err != nil {
		t.Fatalf("write on promoted replica: %v", err)
	}
}

// TestPostgresMovesOffATakenPort starts the primary on a port that another
// process holds, as when the port FreePort found is taken before postgres
// binds it: the primary starts on another port.
func TestPostgresMovesOffATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	p := Postgres(t, NoReplica(), func(o *pgOptions) { o.port = taken })
	if p.PrimaryPort == taken {
		t.Fatalf("the primary claims port %d, which another process holds", taken)
	}
	if err := p.Exec(context.Background(), p.PrimaryDSN("postgres"), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

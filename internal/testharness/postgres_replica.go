package testharness

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StopReplica stops the replica with a pg_ctl stop mode.
func (p *PG) StopReplica(mode string) {
	p.t.Helper()
	if err := stopPG(p.replica, mode); err != nil {
		p.t.Fatalf("testharness: stop replica: %v", err)
	}
}

// StartReplica starts the replica (again) and waits until it accepts queries.
func (p *PG) StartReplica() {
	p.t.Helper()
	if p.replica != nil && !p.replica.exited() {
		p.t.Fatalf("testharness: replica is already running")
	}
	p.replica = p.startServer("postgres replica", p.ReplicaDataDir, p.ReplicaLog, p.ReplicaDSN("postgres"))
	p.replayPaused = false
}

// PauseReplay pauses WAL replay on the replica (WAL is still received, so byte
// lag grows as the primary writes) and waits until replay is paused.
func (p *PG) PauseReplay() {
	p.t.Helper()
	p.replicaSQLUntil("SELECT pg_wal_replay_pause()",
		"SELECT pg_get_wal_replay_pause_state() = 'paused'")
	p.replayPaused = true
}

// ResumeReplay resumes WAL replay on the replica.
func (p *PG) ResumeReplay() {
	p.t.Helper()
	p.replicaSQLUntil("SELECT pg_wal_replay_resume()",
		"SELECT pg_get_wal_replay_pause_state() = 'not paused'")
	p.replayPaused = false
}

// StopWALReceiver clears primary_conninfo on the replica (ALTER SYSTEM and a
// reload), and waits until pg_stat_wal_receiver on the replica and
// pg_stat_replication on the primary are both empty. The replica stays up,
// in recovery, with receive = replay: "lag 0" although nothing streams.
func (p *PG) StopWALReceiver() {
	p.t.Helper()
	if p.primaryConninfo == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.QueryRow(ctx, p.ReplicaDSN("postgres"), "SHOW primary_conninfo", &p.primaryConninfo); err != nil {
			p.t.Fatalf("testharness: read primary_conninfo: %v", err)
		}
	}
	p.replicaSQLUntil("ALTER SYSTEM SET primary_conninfo = ''", "SELECT pg_reload_conf()")
	p.waitFor("the WAL receiver to stop", func(ctx context.Context) (bool, error) {
		var n int
		if err := p.QueryRow(ctx, p.ReplicaDSN("postgres"), "SELECT count(*) FROM pg_stat_wal_receiver", &n); err != nil {
			return false, err
		}
		return n == 0, nil
	})
	if p.primary != nil && !p.primary.exited() {
		p.waitFor("the primary to see no streaming replica", func(ctx context.Context) (bool, error) {
			n, err := p.StreamingReplicas(ctx)
			return n == 0, err
		})
	}
	p.receiverStopped = true
}

// StartWALReceiver restores primary_conninfo after StopWALReceiver and waits
// until the replica streams again.
func (p *PG) StartWALReceiver() {
	p.t.Helper()
	conninfo := strings.ReplaceAll(p.primaryConninfo, "'", "''")
	p.replicaSQLUntil("ALTER SYSTEM SET primary_conninfo = '"+conninfo+"'", "SELECT pg_reload_conf()")
	p.waitStreaming()
	p.receiverStopped = false
}

// Promote promotes the replica (pg_promote, waiting up to 30 s). The old
// primary keeps running: stop it with StopPrimary if the test needs that.
func (p *PG) Promote() {
	p.t.Helper()
	p.replicaSQLUntil("SELECT pg_promote(true, 30)", "SELECT NOT pg_is_in_recovery()")
	p.promoted = true
}

// StreamingReplicas counts the primary's replicas in state streaming.
func (p *PG) StreamingReplicas(ctx context.Context) (int, error) {
	var n int
	err := p.QueryRow(ctx, p.PrimaryDSN("postgres"),
		"SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", &n)
	return n, err
}

// WaitReplicaCaughtUp waits until the replica has replayed all WAL the
// primary had written when it was called.
func (p *PG) WaitReplicaCaughtUp() {
	p.t.Helper()
	var lsn string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.QueryRow(ctx, p.PrimaryDSN("postgres"), "SELECT pg_current_wal_lsn()::text", &lsn); err != nil {
		p.t.Fatalf("testharness: current WAL position: %v", err)
	}
	p.waitFor("the replica to replay "+lsn, func(ctx context.Context) (bool, error) {
		var ok bool
		err := p.QueryRow(ctx, p.ReplicaDSN("postgres"),
			"SELECT coalesce(pg_last_wal_replay_lsn() >= '"+lsn+"'::pg_lsn, false)", &ok)
		return ok, err
	})
}

// startReplica takes a base backup of the primary and starts the replica.
func (p *PG) startReplica() {
	p.t.Helper()
	dumpLogOnFailure(p.t, "postgres replica", p.ReplicaLog)
	p.ReplicaPort = FreePort(p.t)
	if err := os.Mkdir(p.ReplicaDataDir, 0o700); err != nil {
		p.t.Fatalf("testharness: %v", err)
	}
	if err := p.user.chownTree(p.ReplicaDataDir); err != nil {
		p.t.Fatalf("testharness: %v", err)
	}
	out, err := runCmd(p.user, filepath.Join(p.BinDir, "pg_basebackup"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.PrimaryPort), "-U", "postgres",
		"-D", p.ReplicaDataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	if err != nil {
		p.t.Fatalf("testharness: pg_basebackup: %v: %s", err, out)
	}
	if err := appendLines(filepath.Join(p.ReplicaDataDir, "postgresql.conf"),
		[]string{"port = " + strconv.Itoa(p.ReplicaPort)}); err != nil {
		p.t.Fatalf("testharness: %v", err)
	}
	p.replica = p.startNew("postgres replica", p.ReplicaDataDir, p.ReplicaLog, &p.ReplicaPort)
	p.waitStreaming()
}

// waitStreaming waits until the primary sees a streaming replica and the
// replica's WAL receiver is streaming.
func (p *PG) waitStreaming() {
	p.t.Helper()
	p.waitFor("the replica to stream", func(ctx context.Context) (bool, error) {
		var status string
		err := p.QueryRow(ctx, p.ReplicaDSN("postgres"),
			"SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), '')", &status)
		if err != nil || status != "streaming" {
			return false, err
		}
		n, err := p.StreamingReplicas(ctx)
		return n > 0, err
	})
}

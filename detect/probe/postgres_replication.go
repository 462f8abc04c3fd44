package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/common/model"
)

// replicationParams is the params of postgres_replication.
type replicationParams struct {
	// Side is auto (default: decided by pg_is_in_recovery()), primary or
	// replica; an explicit side fails when the server has the other role.
	Side string `param:"side"`
	// MaxLagBytes fails the probe when more WAL than this is unreplayed.
	MaxLagBytes *int64 `param:"max_lag_bytes"`
	// MaxLagSeconds fails the probe when the time lag is larger.
	MaxLagSeconds *model.Duration `param:"max_lag_seconds"`
	// MinReplicas is how many standbys a primary must stream to
	// (default 1).
	MinReplicas int `param:"min_replicas"`
	// RequireReceiver fails a replica whose WAL receiver is not streaming
	// (default true).
	RequireReceiver bool `param:"require_receiver"`
	heartbeatParams
}

func (c *replicationParams) defaults() {
	c.Side, c.MinReplicas, c.RequireReceiver = "auto", 1, true
	c.heartbeatParams.defaults()
}

func (c *replicationParams) check() error {
	switch c.Side {
	case "auto", rolePrimary, roleReplica:
	default:
		return params.Errorf("side", "%q: want auto, primary or replica", c.Side)
	}
	if c.MaxLagBytes != nil && *c.MaxLagBytes < 0 {
		return params.Errorf("max_lag_bytes", "must not be negative")
	}
	if c.MinReplicas < 0 {
		return params.Errorf("min_replicas", "must not be negative")
	}
	return checkTableName("heartbeat_table", c.HeartbeatTable)
}

func compilePostgresReplication(p config.Probe, cfg *config.Config) (Runner, error) {
	return compileKind(p, cfg, &replicationParams{}, compilePostgres, postgresReplication)
}

// postgresReplication measures replication lag in bytes and seconds. On a
// replica: WAL received but not replayed, whether the WAL receiver streams
// (a dead receiver makes receive = replay, "lag 0"), and now() minus the
// replicated heartbeat. On a primary: per standby in pg_stat_replication,
// WAL not yet replayed, and for how long the primary has been past the
// standby's replay position; plus the number of streaming standbys.
func postgresReplication(ctx context.Context, env Env, t pgTarget, c *replicationParams) detect.Result {
	pool, err := env.pgPool(t)
	if err != nil {
		return fail("%v", err)
	}
	red, target := t.red, t.name
	var inRecovery bool
	var current *float64
	err = pool.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		CASE WHEN NOT pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 END`).
		Scan(&inRecovery, &current)
	if err != nil {
		return fail("cannot query %s: %s", target, pgErrorMessage(err, red))
	}
	r := newResult()
	switch {
	case inRecovery && c.Side == rolePrimary:
		r.failf("%s is in recovery (a replica), want the primary", target)
	case !inRecovery && c.Side == roleReplica:
		r.failf("%s is not in recovery: it is a primary (promoted?), want a replica", target)
		env.setWALReceiverUp(target, 0)
	case inRecovery:
		err = env.replicaLag(ctx, pool, t.name, c, r)
	default:
		err = env.primaryLag(ctx, pool, t.name, c, *current, r)
	}
	if err != nil {
		r.failf("cannot query %s: %s", target, pgErrorMessage(err, red))
	}
	return r.done()
}

// replicaLag measures lag on a replica.
func (e Env) replicaLag(ctx context.Context, pool *pgxpool.Pool, target string, c *replicationParams, r *result) error {
	r.detail("side", roleReplica)
	var lagBytes float64
	var streaming, paused bool
	var replayAge *float64
	err := pool.QueryRow(ctx, `SELECT
		GREATEST(COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)::float8,
		EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
		pg_is_wal_replay_paused(),
		EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8`).
		Scan(&lagBytes, &streaming, &paused, &replayAge)
	if err != nil {
		return err
	}
	r.observe("lag_bytes", lagBytes)
	r.observe("wal_receiver_up", boolf(streaming))
	r.observe("replay_paused", boolf(paused))
	e.setWALReceiverUp(target, boolf(streaming))

	// Time lag from the replicated heartbeat; without one, fall back to the
	// last replayed transaction, which only means something while WAL is
	// waiting to be replayed.
	var hbAge, hbTS float64
	err = pool.QueryRow(ctx, "SELECT EXTRACT(EPOCH FROM now() - ts)::float8, EXTRACT(EPOCH FROM ts)::float8 FROM "+
		quoteTable(c.HeartbeatTable)+" WHERE id = $1", c.HeartbeatID).Scan(&hbAge, &hbTS)
	var lagSeconds float64
	switch {
	case err == nil:
		lagSeconds = math.Max(hbAge, 0)
		r.detail("lag_seconds_source", "heartbeat")
		r.observe("heartbeat_timestamp_seconds", hbTS)
	case errors.Is(err, pgx.ErrNoRows) || sqlState(err) == stateUndefinedTable:
		r.detail("lag_seconds_source", "last_replayed_transaction (no heartbeat row: run postgres_heartbeat on the primary)")
		if lagBytes > 0 && replayAge != nil {
			lagSeconds = math.Max(*replayAge, 0)
		}
	default:
		return err
	}
	r.observe("lag_seconds", lagSeconds)
	e.setLag(target, lagBytes, lagSeconds)

	if !streaming && c.RequireReceiver {
		r.failf("WAL receiver on %s is not streaming (byte lag reads %.0f only because nothing arrives)", target, lagBytes)
	}
	if paused {
		r.detail("replay", "paused")
	}
	checkLag(c, r, target, lagBytes, lagSeconds)
	return nil
}

// standby is one row of pg_stat_replication.
type standby struct {
	name       string
	state      string
	replayPos  *float64
	lagBytes   float64
	lagSeconds float64
}

// primaryLag measures lag of every standby of a primary.
func (e Env) primaryLag(ctx context.Context, pool *pgxpool.Pool, target string, c *replicationParams, current float64, r *result) error {
	r.detail("side", rolePrimary)
	now := e.now()
	hist, err := cached(e, func(s *shared) map[string]*lsnHistory { return s.lsn }, target,
		func() (*lsnHistory, error) { return &lsnHistory{}, nil })
	if err != nil {
		return err
	}
	hist.add(now, current)
	rows, err := pool.Query(ctx, `SELECT COALESCE(NULLIF(application_name, ''), 'pid' || pid::text),
		COALESCE(state, ''), pg_wal_lsn_diff(replay_lsn, '0/0')::float8
		FROM pg_stat_replication ORDER BY 1`)
	if err != nil {
		return err
	}
	var standbys []standby
	seen := map[string]int{}
	for rows.Next() {
		var s standby
		if err := rows.Scan(&s.name, &s.state, &s.replayPos); err != nil {
			rows.Close()
			return err
		}
		if seen[s.name]++; seen[s.name] > 1 {
			s.name = fmt.Sprintf("%s#%d", s.name, seen[s.name])
		}
		standbys = append(standbys, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	streaming, maxBytes, maxSeconds, known := 0, 0.0, 0.0, false
	for i := range standbys {
		s := &standbys[i]
		if s.state == "streaming" {
			streaming++
		}
		r.detail("standby."+s.name+".state", s.state)
		if s.replayPos == nil {
			continue
		}
		s.lagBytes = math.Max(current-*s.replayPos, 0)
		if since, behind := hist.behindSince(*s.replayPos); behind {
			s.lagSeconds = math.Max(now.Sub(since).Seconds(), 0)
		}
		r.observe("standby."+s.name+".lag_bytes", s.lagBytes)
		r.observe("standby."+s.name+".lag_seconds", s.lagSeconds)
		maxBytes, maxSeconds, known = math.Max(maxBytes, s.lagBytes), math.Max(maxSeconds, s.lagSeconds), true
	}
	r.observe("streaming_replicas", float64(streaming))
	if known {
		r.observe("lag_bytes", maxBytes)
		r.observe("lag_seconds", maxSeconds)
		e.setLag(target, maxBytes, maxSeconds)
	} else {
		e.forgetLag(target)
	}
	if streaming < c.MinReplicas {
		names := make([]string, 0, len(standbys))
		for _, s := range standbys {
			names = append(names, s.name+"="+s.state)
		}
		sort.Strings(names)
		r.failf("%s streams to %d replica(s), want at least %d (pg_stat_replication: %v)", target, streaming, c.MinReplicas, names)
	}
	for _, s := range standbys {
		checkLag(c, r, target+" → "+s.name, s.lagBytes, s.lagSeconds)
	}
	return nil
}

// checkLag adds failures for lag over the configured thresholds.
func checkLag(c *replicationParams, r *result, what string, lagBytes, lagSeconds float64) {
	if c.MaxLagBytes != nil && lagBytes > float64(*c.MaxLagBytes) {
		r.failf("replication lag on %s is %.0f bytes, over max_lag_bytes %d", what, lagBytes, *c.MaxLagBytes)
	}
	if c.MaxLagSeconds != nil && lagSeconds > time.Duration(*c.MaxLagSeconds).Seconds() {
		r.failf("replication lag on %s is %.1fs, over max_lag_seconds %s", what, lagSeconds, *c.MaxLagSeconds)
	}
}

// setLag sets the lag gauges of target.
func (e Env) setLag(target string, bytes, seconds float64) {
	if m := e.Metrics; m != nil {
		m.PGLagBytes.WithLabelValues(target).Set(bytes)
		m.PGLagSeconds.WithLabelValues(target).Set(seconds)
	}
}

// forgetLag removes the lag gauges of target when no lag is known.
func (e Env) forgetLag(target string) {
	if m := e.Metrics; m != nil {
		m.PGLagBytes.DeleteLabelValues(target)
		m.PGLagSeconds.DeleteLabelValues(target)
	}
}

// setWALReceiverUp sets drguard_pg_wal_receiver_up of target.
func (e Env) setWALReceiverUp(target string, v float64) {
	if m := e.Metrics; m != nil {
		m.PGWALReceiverUp.WithLabelValues(target).Set(v)
	}
}

package probe

import (
	"context"
	"errors"
	"fmt"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/jackc/pgx/v5"
)

// readyConfig is the params of postgres_ready.
type readyConfig struct {
	// Role is the role the server must have: any (default), primary or
	// replica.
	Role string `json:"role"`
	// WriteCheck upserts the heartbeat row when the server is a primary,
	// proving that a write commits, not only that reads work.
	WriteCheck bool `json:"write_check"`
	heartbeatParams
	// CreateTable creates the heartbeat table when missing (default true).
	CreateTable *bool `json:"create_table"`
}

// Roles postgres_ready can require.
const (
	roleAny     = "any"
	rolePrimary = "primary"
	roleReplica = "replica"
)

func readySettings(p config.Probe) (readyConfig, error) {
	var c readyConfig
	if err := decodeParams(p, &c); err != nil {
		return c, err
	}
	if c.Role == "" {
		c.Role = roleAny
	}
	if c.Role != roleAny && c.Role != rolePrimary && c.Role != roleReplica {
		return c, fmt.Errorf("params: role %q: want any, primary or replica", c.Role)
	}
	c.heartbeatParams = c.heartbeatParams.withDefaults()
	if c.CreateTable == nil {
		yes := true
		c.CreateTable = &yes
	}
	return c, checkTableName(c.HeartbeatTable)
}

func validatePostgresReady(p config.Probe, c *config.Config) error {
	_, terr := postgresTarget(c, p.Target)
	_, perr := readySettings(p)
	return errors.Join(terr, perr)
}

// PostgresReady opens a new connection (so that refused connections and
// exhausted connection slots show), runs SELECT 1, reads the server's role
// with pg_is_in_recovery() and, with write_check on a primary, proves that a
// write commits by upserting the heartbeat row.
func PostgresReady(ctx context.Context, env Env, p config.Probe) detect.Result {
	c, err := readySettings(p)
	if err != nil {
		return fail("%v", err)
	}
	cfg, red, err := env.pgConfig(p.Target)
	if err != nil {
		return fail("%v", err)
	}
	r := newResult()
	start := env.now()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		r.observe("up", 0)
		r.failf("cannot connect to %s: %s", p.Target, pgErrorMessage(err, red))
		return r.done()
	}
	defer func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	r.observe("connect_seconds", env.now().Sub(start).Seconds())

	var one int
	var inRecovery bool
	var version int
	err = conn.QueryRow(ctx, "SELECT 1, pg_is_in_recovery(), current_setting('server_version_num')::int").
		Scan(&one, &inRecovery, &version)
	if err != nil {
		r.observe("up", 0)
		r.failf("query on %s failed: %s", p.Target, pgErrorMessage(err, red))
		return r.done()
	}
	r.observe("up", 1)
	r.observe("in_recovery", boolf(inRecovery))
	r.observe("server_version_num", float64(version))
	role := rolePrimary
	if inRecovery {
		role = roleReplica
	}
	r.detail("role", role)
	if c.Role != roleAny && c.Role != role {
		r.failf("%s is a %s, want a %s", p.Target, role, c.Role)
	}
	if c.WriteCheck && !inRecovery {
		wstart := env.now()
		_, err := upsertHeartbeat(ctx, conn, c.HeartbeatTable, c.HeartbeatID, *c.CreateTable)
		r.observe("write_seconds", env.now().Sub(wstart).Seconds())
		r.observe("write_ok", boolf(err == nil))
		if err != nil {
			r.failf("write on %s did not commit: %s", p.Target, pgErrorMessage(err, red))
		}
	}
	return r.done()
}

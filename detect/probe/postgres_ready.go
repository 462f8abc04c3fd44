package probe

import (
	"context"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
	"github.com/jackc/pgx/v5"
)

// readyParams is the params of postgres_ready.
type readyParams struct {
	// Role is the role the server must have: any (default), primary or
	// replica.
	Role string `param:"role"`
	// WriteCheck upserts the heartbeat row when the server is a primary,
	// proving that a write commits, not only that reads work.
	WriteCheck bool `param:"write_check"`
	heartbeatParams
	// CreateTable creates the heartbeat table when missing (default true).
	CreateTable bool `param:"create_table"`
}

// Roles postgres_ready can require.
const (
	roleAny     = "any"
	rolePrimary = "primary"
	roleReplica = "replica"
)

func (c *readyParams) defaults() {
	c.Role, c.CreateTable = roleAny, true
	c.heartbeatParams.defaults()
}

func (c *readyParams) check() error {
	if c.Role != roleAny && c.Role != rolePrimary && c.Role != roleReplica {
		return params.Errorf("role", "%q: want any, primary or replica", c.Role)
	}
	return checkTableName("heartbeat_table", c.HeartbeatTable)
}

func compilePostgresReady(p config.Probe, cfg *config.Config) (Runner, error) {
	return compileKind(p, cfg, &readyParams{}, compilePostgres, postgresReady)
}

// postgresReady opens a new connection (so that refused connections and
// exhausted connection slots show), runs SELECT 1, reads the server's role
// with pg_is_in_recovery() and, with write_check on a primary, proves that a
// write commits by upserting the heartbeat row.
func postgresReady(ctx context.Context, env Env, t pgTarget, c *readyParams) detect.Result {
	red := t.red
	r := newResult()
	start := env.now()
	conn, err := pgx.ConnectConfig(ctx, t.cfg)
	if err != nil {
		r.observe("up", 0)
		r.failf("cannot connect to %s: %s", t.name, pgErrorMessage(err, red))
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
		r.failf("query on %s failed: %s", t.name, pgErrorMessage(err, red))
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
		r.failf("%s is a %s, want a %s", t.name, role, c.Role)
	}
	if c.WriteCheck && !inRecovery {
		wstart := env.now()
		_, err := upsertHeartbeat(ctx, conn, c.HeartbeatTable, c.HeartbeatID, c.CreateTable)
		r.observe("write_seconds", env.now().Sub(wstart).Seconds())
		r.observe("write_ok", boolf(err == nil))
		if err != nil {
			r.failf("write on %s did not commit: %s", t.name, pgErrorMessage(err, red))
		}
	}
	return r.done()
}

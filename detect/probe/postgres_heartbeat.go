package probe

import (
	"context"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// heartbeatProbeParams is the params of postgres_heartbeat.
type heartbeatProbeParams struct {
	// Table is the heartbeat table (default drguard_heartbeat).
	Table string `param:"table"`
	// ID is the row's id (default "drguard").
	ID string `param:"id"`
	// CreateTable creates the table when it is missing (default true);
	// that needs CREATE on the schema, the upsert alone only INSERT and
	// UPDATE on the table.
	CreateTable bool `param:"create_table"`
}

func (c *heartbeatProbeParams) defaults() {
	c.Table, c.ID, c.CreateTable = DefaultHeartbeatTable, DefaultHeartbeatID, true
}

func (c *heartbeatProbeParams) check() error { return checkTableName("table", c.Table) }

func compilePostgresHeartbeat(p config.Probe, cfg *config.Config) (Runner, error) {
	return compileKind(p, cfg, &heartbeatProbeParams{}, compilePostgres, postgresHeartbeat)
}

// postgresHeartbeat upserts a heartbeat row (id, ts = now()) on the
// primary. The row replicates, so a replica's now() − ts is an honest
// time lag even on an idle primary, and the newest ts that reached a
// replica is the recovery point it offers.
func postgresHeartbeat(ctx context.Context, env Env, t pgTarget, c *heartbeatProbeParams) detect.Result {
	pool, err := env.pgPool(t)
	if err != nil {
		return fail("%v", err)
	}
	red := t.red
	r := newResult()
	r.detail("table", c.Table)
	start := env.now()
	ts, err := upsertHeartbeat(ctx, pool, c.Table, c.ID, c.CreateTable)
	r.observe("write_seconds", env.now().Sub(start).Seconds())
	switch {
	case err != nil && sqlState(err) == stateReadOnlySQLTxn:
		r.failf("heartbeat not written: %s is read-only (a replica, or default_transaction_read_only); point this probe at the primary", t.name)
	case err != nil:
		r.failf("heartbeat not written to %s: %s", c.Table, pgErrorMessage(err, red))
	default:
		r.observe("heartbeat_timestamp_seconds", float64(ts.UnixNano())/1e9)
	}
	return r.done()
}

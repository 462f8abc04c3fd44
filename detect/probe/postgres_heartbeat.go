package probe

import (
	"context"
	"errors"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// heartbeatConfig is the params of postgres_heartbeat.
type heartbeatConfig struct {
	// Table is the heartbeat table (default drguard_heartbeat).
	Table string `json:"table"`
	// ID is the row's id (default "drguard").
	ID string `json:"id"`
	// CreateTable creates the table when it is missing (default true);
	// that needs CREATE on the schema, the upsert alone only INSERT and
	// UPDATE on the table.
	CreateTable *bool `json:"create_table"`
}

func heartbeatSettings(p config.Probe) (heartbeatConfig, error) {
	var c heartbeatConfig
	if err := decodeParams(p, &c); err != nil {
		return c, err
	}
	h := heartbeatParams{HeartbeatTable: c.Table, HeartbeatID: c.ID}.withDefaults()
	c.Table, c.ID = h.HeartbeatTable, h.HeartbeatID
	if c.CreateTable == nil {
		yes := true
		c.CreateTable = &yes
	}
	return c, checkTableName(c.Table)
}

func validatePostgresHeartbeat(p config.Probe, c *config.Config) error {
	_, terr := postgresTarget(c, p.Target)
	_, perr := heartbeatSettings(p)
	return errors.Join(terr, perr)
}

// PostgresHeartbeat upserts a heartbeat row (id, ts = now()) on the
// primary. The row replicates, so a replica's now() − ts is an honest
// time lag even on an idle primary, and the newest ts that reached a
// replica is the recovery point it offers.
func PostgresHeartbeat(ctx context.Context, env Env, p config.Probe) detect.Result {
	c, err := heartbeatSettings(p)
	if err != nil {
		return fail("%v", err)
	}
	pool, red, err := env.pgPool(p.Target)
	if err != nil {
		return fail("%v", err)
	}
	r := newResult()
	r.detail("table", c.Table)
	start := env.now()
	ts, err := upsertHeartbeat(ctx, pool, c.Table, c.ID, *c.CreateTable)
	r.observe("write_seconds", env.now().Sub(start).Seconds())
	switch {
	case err != nil && sqlState(err) == stateReadOnlySQLTxn:
		r.failf("heartbeat not written: %s is read-only (a replica, or default_transaction_read_only); point this probe at the primary", p.Target)
	case err != nil:
		r.failf("heartbeat not written to %s: %s", c.Table, pgErrorMessage(err, red))
	default:
		r.observe("heartbeat_timestamp_seconds", float64(ts.UnixNano())/1e9)
	}
	return r.done()
}

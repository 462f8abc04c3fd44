package drill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// readBefore holds every probe that writes the heartbeat, then reads the
// newest heartbeat the heartbeat's target has committed: what the failed
// database held just before the injection. Nothing writes a heartbeat again
// until the RPO has been read after the recovery.
func (x *execution) readBefore() {
	cfg := x.r.o.Config
	for _, p := range cfg.Probes {
		if p.Name == x.d.Heartbeat || p.Type == "postgres_ready" && p.Params["write_check"] == true {
			release, err := x.r.o.Prober.Hold(p.Name)
			if err != nil {
				x.note("rpo_unmeasured", "cannot hold heartbeat writer %s: %v", p.Name, err)
				return
			}
			x.release = append(x.release, release)
		}
	}
	hb, _ := cfg.Probe(x.d.Heartbeat)
	t, ok := postgresTarget(cfg, hb.Target)
	if !ok {
		x.note("rpo_unmeasured", "heartbeat probe %s has no postgres target", hb.Name)
		return
	}
	ctx, cancel := context.WithTimeout(x.ctx, 10*time.Second)
	defer cancel()
	ts, err := readHeartbeat(ctx, t, hb, false)
	if err != nil {
		x.note("rpo_unmeasured", "the newest heartbeat on %s before the injection could not be read: %v", t.Name, err)
		return
	}
	x.mu.Lock()
	x.before = ts
	// Journaled with the injection's first note: no write between the
	// reading and the injection.
	x.logf("heartbeat", "newest heartbeat committed on %s before the injection: %s; heartbeat writers held until the RPO is read", t.Name, ts.Format(time.RFC3339Nano))
	x.mu.Unlock()
}

// measureRPO reads the newest heartbeat on the database that serves after
// the recovery, once it has replayed all the WAL it received, and records
// the data lost: the heartbeat before the injection minus that one.
func (x *execution) measureRPO() {
	x.mu.Lock()
	before := x.before
	x.mu.Unlock()
	if before.IsZero() {
		return
	}
	cfg := x.r.o.Config
	hb, _ := cfg.Probe(x.d.Heartbeat)
	t, ok := postgresTarget(cfg, x.d.ServingTarget)
	if !ok {
		x.note("rpo_unmeasured", "serving target %s is not a postgres target", x.d.ServingTarget)
		return
	}
	ctx, cancel := context.WithTimeout(x.ctx, time.Minute)
	defer cancel()
	after, err := readHeartbeat(ctx, t, hb, true)
	if err != nil {
		x.note("rpo_unmeasured", "the newest heartbeat on %s after the recovery could not be read: %v", t.Name, err)
		return
	}
	lost := max(before.Sub(after), 0)
	objective := time.Duration(cfg.Objectives[x.d.Objective].RPO)
	detail := fmt.Sprintf("newest heartbeat on %s before the injection %s; newest on %s after the recovery %s",
		hb.Target, before.Format(time.RFC3339Nano), t.Name, after.Format(time.RFC3339Nano))
	if after.After(before) {
		detail += " (newer: nothing the heartbeat shows was lost)"
	}
	x.mu.Lock()
	x.run.RPO = &store.DrillMeasure{Seconds: lost.Seconds(), ObjectiveSeconds: objective.Seconds(), Within: lost <= objective,
		From: after, To: before, Detail: detail}
	x.logf("rpo", "data lost: %s (objective %s): %s", fmtDur(lost), model.Duration(objective), detail)
	x.mu.Unlock()
	x.save()
}

// readHeartbeat reads the heartbeat probe hb's row on target t. With
// replayed, a server in recovery is first given time to replay all the WAL
// it has received: reading earlier would over-report the loss.
func readHeartbeat(ctx context.Context, t config.PostgresTarget, hb config.Probe, replayed bool) (time.Time, error) {
	conn, err := pgx.Connect(ctx, t.DSN.Reveal())
	if err != nil {
		return time.Time{}, redact(err, t)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for replayed {
		var inRecovery, caughtUp bool
		err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(),
			pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn()`).Scan(&inRecovery, &caughtUp)
		if err != nil {
			return time.Time{}, redact(err, t)
		}
		if !inRecovery || caughtUp {
			break
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s has not replayed the WAL it received: %w", t.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	table, _ := hb.Params["table"].(string)
	id, _ := hb.Params["id"].(string)
	if table == "" {
		table = action.DefaultHeartbeatTable
	}
	if id == "" {
		id = action.DefaultHeartbeatID
	}
	var ts time.Time
	parts := strings.Split(table, ".")
	if err := conn.QueryRow(ctx, "SELECT ts FROM "+pgx.Identifier(parts).Sanitize()+" WHERE id = $1", id).Scan(&ts); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return time.Time{}, fmt.Errorf("%s has no heartbeat row %q in %s", t.Name, id, table)
		}
		return time.Time{}, redact(err, t)
	}
	return ts.UTC(), nil
}

// redact words a pgx error without the target's DSN.
func redact(err error, t config.PostgresTarget) error {
	msg := err.Error()
	if dsn := t.DSN.Reveal(); dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, "<dsn>")
	}
	return errors.New(msg)
}

// postgresTarget returns the postgres target called name.
func postgresTarget(cfg *config.Config, name string) (config.PostgresTarget, bool) {
	for _, t := range cfg.Targets.Postgres {
		if t.Name == name {
			return t, true
		}
	}
	return config.PostgresTarget{}, false
}

// matches reports whether every matcher of p matches ls.
func matches(p config.Policy, ls map[string]string) bool {
	for _, s := range p.Matchers {
		m, err := labels.ParseMatcher(s)
		if err != nil || !m.Matches(ls[m.Name]) {
			return false
		}
	}
	return true
}

// fmtDur writes a duration as configuration does (to the second), or in
// milliseconds under a second.
func fmtDur(d time.Duration) string {
	if d < time.Second && d > -time.Second {
		return d.Round(time.Millisecond).String()
	}
	return model.Duration(d.Round(time.Second)).String()
}

// secs writes a measured number of seconds: to the millisecond under 10s,
// to a tenth under an hour, else as configuration writes durations.
func secs(s float64) string {
	switch {
	case s < 10:
		return fmt.Sprintf("%.3fs", s)
	case s < 3600:
		return fmt.Sprintf("%.1fs", s)
	}
	return fmt.Sprintf("%s (%.0fs)", fmtDur(time.Duration(s*float64(time.Second))), s)
}

// matchingPolicies returns the drill's policies whose matchers match
// labels.
func matchingPolicies(cfg *config.Config, d config.Drill, ls map[string]string) []string {
	var out []string
	for _, name := range d.AllPolicies() {
		p, ok := cfg.Policy(name)
		if ok && matches(p, ls) {
			out = append(out, name)
		}
	}
	return out
}

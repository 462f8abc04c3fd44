package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// Defaults of postgres.promote.
const (
	DefaultPromoteWaitSeconds = 60
	DefaultHeartbeatTable     = "drguard_heartbeat"
	DefaultHeartbeatID        = "drguard"
)

// heartbeatTableRE is "table" or "schema.table" of plain identifiers.
var heartbeatTableRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*(\.[a-zA-Z_][a-zA-Z0-9_]*)?$`)

// PostgresPromote promotes a self-managed streaming replica to primary
// with pg_promote, after checking that promoting it loses no more data
// than the service's RPO allows.
//
// The lag it checks is the age of the newest heartbeat row the replica
// has replayed (the postgres_heartbeat probe writes it on the primary),
// or, without a heartbeat table, the age of the last replayed transaction.
// Both are upper bounds of the data a promotion loses: they also grow
// while the primary is down or idle. It refuses when the lag exceeds
// max_lag (default: the RPO of the target's service) or cannot be
// measured, unless the step says force: true.
//
// Params: target (a postgres target: the replica), max_lag (duration),
// force (bool), wait_seconds (default 60), heartbeat_table (default
// drguard_heartbeat), heartbeat_id (default drguard).
//
// Result: target, promoted, already_primary, lag_seconds, lag_source,
// max_lag_seconds, replay_lag_bytes, receiver_status, forced.
type PostgresPromote struct {
	cfg *config.Config
	log *slog.Logger
}

// promoteInfo declares promote destructive (it ends replication for good,
// and the old primary, if alive, must be fenced) and idempotent (a server
// that is already primary is left alone).
var promoteInfo = Info{Destructive: true, Idempotent: true}

// promoteParams is the params of postgres.promote.
type promoteParams struct {
	// Target is the postgres target to promote (the replica).
	Target string `param:"target"`
	// MaxLag overrides the RPO of the target's service as the limit.
	MaxLag *model.Duration `param:"max_lag"`
	// Force promotes whatever the lag.
	Force bool `param:"force"`
	// WaitSeconds is pg_promote's wait (default 60).
	WaitSeconds    int    `param:"wait_seconds"`
	HeartbeatTable string `param:"heartbeat_table"`
	HeartbeatID    string `param:"heartbeat_id"`
}

func (s *promoteParams) defaults() {
	s.WaitSeconds, s.HeartbeatTable, s.HeartbeatID = DefaultPromoteWaitSeconds, DefaultHeartbeatTable, DefaultHeartbeatID
}

func (s *promoteParams) check(t params.Templates) error {
	if s.MaxLag != nil && *s.MaxLag <= 0 {
		return params.Errorf("max_lag", "must be positive")
	}
	if s.WaitSeconds <= 0 && t.Literal("wait_seconds") {
		return params.Errorf("wait_seconds", "must be positive")
	}
	if t.Literal("heartbeat_table") && !heartbeatTableRE.MatchString(s.HeartbeatTable) {
		return params.Errorf("heartbeat_table", `%q is not "table" or "schema.table"`, s.HeartbeatTable)
	}
	return nil
}

func newPostgresPromote(d Deps) (RunFunc[promoteParams], error) {
	return (&PostgresPromote{cfg: d.Config, log: d.Logger}).run, nil
}

// replicaState is what the replica says about itself before promotion.
type replicaState struct {
	inRecovery     bool
	replayLagBytes int64
	receiverStatus string
	lag            time.Duration
	lagSource      string // "" when unknown
}

// run checks the lag against the RPO and promotes.
func (p *PostgresPromote) run(ctx context.Context, req Request, spec *promoteParams) (Outcome, error) {
	t, err := p.target(spec.Target, req.Target)
	if err != nil {
		return Outcome{}, err
	}
	var maxLag time.Duration
	limitWhat := "max_lag"
	if spec.MaxLag != nil {
		maxLag = time.Duration(*spec.MaxLag)
	} else {
		if o, ok := p.cfg.Objectives[t.Service]; ok && o.RPO > 0 {
			maxLag, limitWhat = time.Duration(o.RPO), fmt.Sprintf("service %s's RPO", t.Service)
		}
	}
	dsn := t.DSN.Reveal()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return Outcome{}, fmt.Errorf("postgres target %s: connect: %w", t.Name, pgError(err, dsn))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	st, err := readReplicaState(ctx, conn, spec)
	if err != nil {
		return Outcome{}, fmt.Errorf("postgres target %s: %w", t.Name, pgError(err, dsn))
	}
	res := map[string]any{
		"target": t.Name, "promoted": false, "already_primary": !st.inRecovery, "forced": spec.Force,
		"replay_lag_bytes": st.replayLagBytes, "receiver_status": st.receiverStatus,
		"lag_seconds": st.lag.Seconds(), "lag_source": st.lagSource, "max_lag_seconds": maxLag.Seconds(),
	}
	if !st.inRecovery {
		return Outcome{Output: fmt.Sprintf("%s is already a primary (not in recovery); nothing to promote", t.Name), Result: res}, nil
	}
	lagText := describeLag(st)
	if reason := lagRefusal(st, maxLag, limitWhat); reason != "" && !spec.Force {
		return Outcome{Output: lagText, Result: res}, fmt.Errorf("postgres.promote refused on %s: %s; promoting would lose that data. Set force: true on the step to promote anyway", t.Name, reason)
	}
	var promoted bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, $1)", spec.WaitSeconds).Scan(&promoted); err != nil {
		return Outcome{Output: lagText, Result: res}, fmt.Errorf("postgres target %s: pg_promote: %w", t.Name, pgError(err, dsn))
	}
	if !promoted {
		return Outcome{Output: lagText, Result: res}, fmt.Errorf("postgres target %s: promotion did not complete within %ds (pg_promote returned false); check the server log", t.Name, spec.WaitSeconds)
	}
	res["promoted"] = true
	p.log.Warn("postgres replica promoted", "run", req.RunID, "step", req.Step, "target", t.Name, "lag", st.lag, "forced", spec.Force)
	out := fmt.Sprintf("%s promoted to primary. %s", t.Name, lagText)
	if spec.Force {
		out += " (forced)"
	}
	return Outcome{Output: out, Result: res}, nil
}

// target picks the postgres target to promote.
func (p *PostgresPromote) target(param, runTarget string) (config.PostgresTarget, error) {
	ts := p.cfg.Targets.Postgres
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	i, err := pickTarget(config.KindPostgres, names, param, runTarget)
	if err != nil {
		return config.PostgresTarget{}, fmt.Errorf("postgres.promote: %w", err)
	}
	if ts[i].DSN == "" {
		return config.PostgresTarget{}, fmt.Errorf("postgres target %s has no dsn", ts[i].Name)
	}
	return ts[i], nil
}

// readReplicaState reads recovery state, byte lag and time lag.
func readReplicaState(ctx context.Context, conn *pgx.Conn, spec *promoteParams) (replicaState, error) {
	var st replicaState
	var replayTS *time.Time
	var now time.Time
	err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint,
		coalesce((SELECT status FROM pg_stat_wal_receiver), 'not running'),
		pg_last_xact_replay_timestamp(), now()`).Scan(&st.inRecovery, &st.replayLagBytes, &st.receiverStatus, &replayTS, &now)
	if err != nil {
		return st, fmt.Errorf("read replication state: %w", err)
	}
	var beat time.Time
	err = conn.QueryRow(ctx, "SELECT ts FROM "+quoteTable(spec.HeartbeatTable)+" WHERE id = $1", spec.HeartbeatID).Scan(&beat)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		st.lag, st.lagSource = max(0, now.Sub(beat)), "heartbeat"
	case errors.Is(err, pgx.ErrNoRows) || (errors.As(err, &pgErr) && pgErr.Code == "42P01"):
		if replayTS != nil {
			st.lag, st.lagSource = max(0, now.Sub(*replayTS)), "last replayed transaction"
		}
	default:
		return st, fmt.Errorf("read heartbeat from %s: %w", spec.HeartbeatTable, err)
	}
	return st, nil
}

// lagRefusal says why the lag forbids promotion, or "" when it allows it.
func lagRefusal(st replicaState, maxLag time.Duration, limitWhat string) string {
	switch {
	case maxLag <= 0:
		return "no limit to check the lag against: the target's service has no RPO objective and the step sets no max_lag"
	case st.lagSource == "":
		return "its lag cannot be measured (no heartbeat row and no replayed transaction)"
	case st.lag > maxLag:
		return fmt.Sprintf("its data is %s behind (%s), more than %s of %s", fmtLag(st.lag), st.lagSource, limitWhat, fmtLag(maxLag))
	}
	return ""
}

func describeLag(st replicaState) string {
	lag := "unknown"
	if st.lagSource != "" {
		lag = fmt.Sprintf("%s (%s)", fmtLag(st.lag), st.lagSource)
	}
	return fmt.Sprintf("Replica lag before promotion: %s; %d bytes received but not replayed; WAL receiver %s.", lag, st.replayLagBytes, st.receiverStatus)
}

// fmtLag formats a duration the way the configuration writes them: 2s,
// 1h30m, 4h.
func fmtLag(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return model.Duration(d.Round(time.Second)).String()
}

// quoteTable quotes "table" or "schema.table" (already checked against
// heartbeatTableRE).
func quoteTable(t string) string {
	parts := strings.Split(t, ".")
	for i, p := range parts {
		parts[i] = pgx.Identifier{p}.Sanitize()
	}
	return strings.Join(parts, ".")
}

// pgError words a pgx error without the DSN or its password. A deadline
// is ErrTimedOut.
func pgError(err error, dsn string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimedOut
	}
	msg := err.Error()
	if dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, "<dsn>")
		if cfg, perr := pgconn.ParseConfig(dsn); perr == nil && cfg.Password != "" {
			msg = strings.ReplaceAll(msg, cfg.Password, "<secret>")
		}
	}
	return errors.New(msg)
}

// pgPreflight connects to a postgres target and says whether it is in
// recovery (a replica). It reports false when it could not connect.
func pgPreflight(ctx context.Context, t config.PostgresTarget, pf *Preflight) (conn *pgx.Conn, inRecovery, ok bool) {
	dsn := t.DSN.Reveal()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
	}
	if err != nil {
		if conn != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
		}
		pf.fail("connect", t.Name, "cannot connect: %s", pgError(err, dsn))
		return nil, false, false
	}
	role := "a primary"
	if inRecovery {
		role = "a replica"
	}
	pf.pass("connect", t.Name, "connected; the server is %s", role)
	return conn, inRecovery, true
}

// preflightPostgresPromote checks that the target is a replica and that
// its lag would let the promotion go ahead now.
func preflightPostgresPromote(d Deps) PreflightFunc[promoteParams] {
	p := &PostgresPromote{cfg: d.Config, log: d.Logger}
	return func(ctx context.Context, req Request, spec *promoteParams) Preflight {
		var pf Preflight
		t, err := p.target(spec.Target, req.Target)
		if err != nil {
			pf.fail("target", spec.Target, "%v", err)
			return pf
		}
		conn, inRecovery, ok := pgPreflight(ctx, t, &pf)
		if !ok {
			return pf
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if !inRecovery {
			pf.warn("replica", t.Name, "already a primary: the step would find nothing to promote")
			return pf
		}
		st, err := readReplicaState(ctx, conn, spec)
		if err != nil {
			pf.fail("lag", t.Name, "%s", pgError(err, t.DSN.Reveal()))
			return pf
		}
		maxLag, what := time.Duration(0), "max_lag"
		if spec.MaxLag != nil {
			maxLag = time.Duration(*spec.MaxLag)
		} else if o, ok := p.cfg.Objectives[t.Service]; ok {
			maxLag, what = time.Duration(o.RPO), fmt.Sprintf("service %s's RPO", t.Service)
		}
		switch reason := lagRefusal(st, maxLag, what); {
		case reason == "":
			pf.pass("lag", t.Name, "%s", describeLag(st))
		case spec.Force:
			pf.warn("lag", t.Name, "%s; the step forces the promotion", reason)
		default:
			pf.fail("lag", t.Name, "promotion would be refused now: %s", reason)
		}
		return pf
	}
}

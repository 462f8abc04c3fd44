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

var _ Action = (*PostgresPromote)(nil)

// NewPostgresPromote builds the postgres.promote action.
func NewPostgresPromote(d Deps) (Action, error) {
	d = d.withDefaults()
	p := &PostgresPromote{cfg: d.Config, log: d.Logger}
	if p.cfg == nil {
		p.cfg = &config.Config{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Info declares promote destructive (it ends replication for good, and the
// old primary, if alive, must be fenced) and idempotent (a server that is
// already primary is left alone).
func (*PostgresPromote) Info() Info { return Info{Destructive: true, Idempotent: true} }

type promoteSpec struct {
	target         string
	maxLag         time.Duration
	force          bool
	waitSeconds    int
	table, beatID  string
	explicitMaxLag bool
}

// Validate checks the unrendered params.
func (*PostgresPromote) Validate(params map[string]any) error {
	if err := checkKnown(params, "target", "max_lag", "force", "wait_seconds", "heartbeat_table", "heartbeat_id"); err != nil {
		return err
	}
	_, err := promoteParams(params, true)
	return err
}

func promoteParams(params map[string]any, unrendered bool) (promoteSpec, error) {
	var s promoteSpec
	var err error
	if s.target, err = stringParam(params, "target", ""); err != nil {
		return s, err
	}
	_, s.explicitMaxLag = params["max_lag"]
	if s.maxLag, err = durationParam(params, "max_lag", 0, unrendered); err != nil {
		return s, err
	}
	if s.explicitMaxLag && s.maxLag <= 0 && !unrendered {
		return s, errors.New(`param "max_lag" must be positive`)
	}
	if s.force, err = boolParam(params, "force", false, unrendered); err != nil {
		return s, err
	}
	if s.waitSeconds, err = intParam(params, "wait_seconds", DefaultPromoteWaitSeconds, unrendered); err != nil {
		return s, err
	}
	if s.waitSeconds <= 0 {
		return s, errors.New(`param "wait_seconds" must be positive`)
	}
	if s.table, err = stringParam(params, "heartbeat_table", DefaultHeartbeatTable); err != nil {
		return s, err
	}
	if !heartbeatTableRE.MatchString(s.table) {
		return s, fmt.Errorf(`param "heartbeat_table": %q is not "table" or "schema.table"`, s.table)
	}
	s.beatID, err = stringParam(params, "heartbeat_id", DefaultHeartbeatID)
	return s, err
}

// replicaState is what the replica says about itself before promotion.
type replicaState struct {
	inRecovery     bool
	replayLagBytes int64
	receiverStatus string
	lag            time.Duration
	lagSource      string // "" when unknown
}

// Run checks the lag against the RPO and promotes.
func (p *PostgresPromote) Run(ctx context.Context, req Request) (Outcome, error) {
	spec, err := promoteParams(req.Params, false)
	if err != nil {
		return Outcome{}, err
	}
	t, err := p.target(spec.target, req.Target)
	if err != nil {
		return Outcome{}, err
	}
	maxLag, limitWhat := spec.maxLag, "max_lag"
	if !spec.explicitMaxLag {
		if o, ok := p.cfg.Objectives[t.Service]; ok && o.RPO > 0 {
			maxLag, limitWhat = time.Duration(o.RPO), fmt.Sprintf("service %s's RPO", t.Service)
		}
	}
	dsn := t.DSN.Reveal()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return Outcome{}, fmt.Errorf("postgres target %s: connect: %s", t.Name, pgError(err, dsn))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	st, err := readReplicaState(ctx, conn, spec)
	if err != nil {
		return Outcome{}, fmt.Errorf("postgres target %s: %s", t.Name, pgError(err, dsn))
	}
	res := map[string]any{
		"target": t.Name, "promoted": false, "already_primary": !st.inRecovery, "forced": spec.force,
		"replay_lag_bytes": st.replayLagBytes, "receiver_status": st.receiverStatus,
		"lag_seconds": st.lag.Seconds(), "lag_source": st.lagSource, "max_lag_seconds": maxLag.Seconds(),
	}
	if !st.inRecovery {
		return Outcome{Output: fmt.Sprintf("%s is already a primary (not in recovery); nothing to promote", t.Name), Result: res}, nil
	}
	lagText := describeLag(st)
	if reason := lagRefusal(st, maxLag, limitWhat); reason != "" && !spec.force {
		return Outcome{Output: lagText, Result: res}, fmt.Errorf("postgres.promote refused on %s: %s; promoting would lose that data. Set force: true on the step to promote anyway", t.Name, reason)
	}
	var promoted bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, $1)", spec.waitSeconds).Scan(&promoted); err != nil {
		return Outcome{Output: lagText, Result: res}, fmt.Errorf("postgres target %s: pg_promote: %s", t.Name, pgError(err, dsn))
	}
	if !promoted {
		return Outcome{Output: lagText, Result: res}, fmt.Errorf("postgres target %s: promotion did not complete within %ds (pg_promote returned false); check the server log", t.Name, spec.waitSeconds)
	}
	res["promoted"] = true
	p.log.Warn("postgres replica promoted", "run", req.RunID, "step", req.Step, "target", t.Name, "lag", st.lag, "forced", spec.force)
	out := fmt.Sprintf("%s promoted to primary. %s", t.Name, lagText)
	if spec.force {
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
func readReplicaState(ctx context.Context, conn *pgx.Conn, spec promoteSpec) (replicaState, error) {
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
	err = conn.QueryRow(ctx, "SELECT ts FROM "+quoteTable(spec.table)+" WHERE id = $1", spec.beatID).Scan(&beat)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		st.lag, st.lagSource = max(0, now.Sub(beat)), "heartbeat"
	case errors.Is(err, pgx.ErrNoRows) || (errors.As(err, &pgErr) && pgErr.Code == "42P01"):
		if replayTS != nil {
			st.lag, st.lagSource = max(0, now.Sub(*replayTS)), "last replayed transaction"
		}
	default:
		return st, fmt.Errorf("read heartbeat from %s: %w", spec.table, err)
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

// pgError words a pgx error without the DSN or its password.
func pgError(err error, dsn string) string {
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out"
	}
	if dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, "<dsn>")
		if cfg, perr := pgconn.ParseConfig(dsn); perr == nil && cfg.Password != "" {
			msg = strings.ReplaceAll(msg, cfg.Password, "<secret>")
		}
	}
	return msg
}

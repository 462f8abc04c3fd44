package action

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// pgPromoteEnv is a real primary and streaming replica, a heartbeat table
// on the primary, and a configuration whose service has an RPO of rpo.
type pgPromoteEnv struct {
	pg  *testharness.PG
	cfg *config.Config
}

func newPGPromoteEnv(t *testing.T, rpo time.Duration) *pgPromoteEnv {
	t.Helper()
	pg := testharness.Postgres(t)
	e := &pgPromoteEnv{pg: pg, cfg: &config.Config{
		Objectives: map[string]config.Objective{"fruitfulplanet": {RPO: model.Duration(rpo), RTO: model.Duration(time.Hour)}},
		Targets: config.Targets{Postgres: []config.PostgresTarget{
			{Name: "pg-primary", Service: "fruitfulplanet", DSN: config.Secret(pg.PrimaryDSN("postgres"))},
			{Name: "pg-replica", Service: "fruitfulplanet", DSN: config.Secret(pg.ReplicaDSN("postgres"))},
		}},
	}}
	e.exec(t, "CREATE TABLE drguard_heartbeat (id text PRIMARY KEY, ts timestamptz NOT NULL)")
	e.beat(t)
	pg.WaitReplicaCaughtUp()
	return e
}

func (e *pgPromoteEnv) exec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.pg.Exec(ctx, e.pg.PrimaryDSN("postgres"), sql); err != nil {
		t.Fatal(err)
	}
}

// beat writes the heartbeat row on the primary, as the probe does.
func (e *pgPromoteEnv) beat(t *testing.T) {
	t.Helper()
	e.exec(t, "INSERT INTO drguard_heartbeat VALUES ('drguard', now()) ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts")
}

func (e *pgPromoteEnv) promote(t *testing.T, params map[string]any) (Outcome, error) {
	t.Helper()
	a, err := Registry["postgres.promote"].New(Deps{Config: e.cfg})
	must(t, err)
	if params == nil {
		params = map[string]any{}
	}
	params["target"] = "pg-replica"
	must(t, a.Validate(params))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return a.Run(ctx, Request{RunID: "run-1", Step: "promote", Policy: "region-failure", Target: "pg-primary", Params: jsonRound(t, params)})
}

func (e *pgPromoteEnv) inRecovery(t *testing.T) bool {
	t.Helper()
	var r bool
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, e.pg.QueryRow(ctx, e.pg.ReplicaDSN("postgres"), "SELECT pg_is_in_recovery()", &r))
	return r
}

func TestPostgresPromote(t *testing.T) {
	e := newPGPromoteEnv(t, time.Hour)
	out, err := e.promote(t, nil)
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	if out.Result["promoted"] != true || out.Result["lag_source"] != "heartbeat" {
		t.Errorf("result = %v", out.Result)
	}
	if e.inRecovery(t) {
		t.Fatal("the replica is still in recovery after promote")
	}
	// A second run finds a primary and leaves it alone.
	out, err = e.promote(t, nil)
	if err != nil || out.Result["already_primary"] != true || out.Result["promoted"] != false {
		t.Errorf("second promote = %v, %v", out.Result, err)
	}
	t.Log(out.Output)
}

func TestPostgresPromoteRefusesLagAboveRPO(t *testing.T) {
	e := newPGPromoteEnv(t, time.Second)
	e.pg.PauseReplay()
	// The primary keeps writing heartbeats the replica does not replay.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		e.beat(t)
		e.exec(t, "CREATE TABLE IF NOT EXISTS filler AS SELECT generate_series(1, 1000) AS n")
		time.Sleep(100 * time.Millisecond)
	}
	out, err := e.promote(t, nil)
	want := "postgres.promote refused on pg-replica: its data is"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "more than service fruitfulplanet's RPO of 1s") {
		t.Fatalf("promote while paused = %v; want %q … RPO", err, want)
	}
	t.Log(err)
	if !e.inRecovery(t) {
		t.Fatal("a refused promotion promoted the replica")
	}
	if b, _ := out.Result["replay_lag_bytes"].(int64); b <= 0 {
		t.Errorf("replay_lag_bytes = %v, want > 0 while replay is paused", out.Result["replay_lag_bytes"])
	}
	// A step that says force: true promotes anyway.
	out, err = e.promote(t, map[string]any{"force": true})
	if err != nil || out.Result["promoted"] != true || out.Result["forced"] != true {
		t.Fatalf("forced promote = %v, %v", out.Result, err)
	}
	if e.inRecovery(t) {
		t.Error("the replica is still in recovery after a forced promote")
	}
}

func TestPostgresPromoteValidate(t *testing.T) {
	a, _ := Registry["postgres.promote"].New(Deps{})
	for params, want := range map[string]string{
		`{"max_lag": "soon"}`:                  "not a duration",
		`{"heartbeat_table": "x; drop table"}`: `not "table" or "schema.table"`,
		`{"wait_seconds": 0}`:                  "must be positive",
		`{"force": "maybe"}`:                   `"maybe" is not true or false`,
		`{"force": true, "max_lag": "5m"}`:     "",
	} {
		var p map[string]any
		must(t, jsonUnmarshal(params, &p))
		err := a.Validate(p)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("Validate(%s) = %v, want %q", params, err, want)
		}
	}
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/common/model"
)

// ExpectNoRows is the expect value of an invariant whose query returns the
// rows that violate it.
const ExpectNoRows = "no_rows"

// integrityParams is the params of postgres_integrity.
type integrityParams struct {
	// Checks are SQL invariants, run in order.
	Checks []integrityCheck `param:"checks"`
	// AmcheckIndexes are indexes to verify with amcheck's bt_index_check
	// (the amcheck extension must be installed).
	AmcheckIndexes []string `param:"amcheck_indexes"`
	// Heapallindexed also checks that every heap tuple is indexed
	// (slower).
	Heapallindexed bool `param:"heapallindexed"`
	// StatementTimeout bounds each statement (default: the probe's
	// timeout).
	StatementTimeout model.Duration `param:"statement_timeout"`
}

// integrityCheck is one invariant: a query and what it must return.
type integrityCheck struct {
	Name string `param:"name"`
	SQL  string `param:"sql"`
	// Expect is "no_rows" (the default) or the value the first column of
	// the first row must have, compared as text (true/false for booleans).
	Expect expectValue `param:"expect"`
}

// expectValue is an expected value written as a string, number or boolean.
type expectValue string

// UnmarshalMapstructure accepts a string, a number or a boolean.
func (v *expectValue) UnmarshalMapstructure(x any) error {
	switch x := x.(type) {
	case string:
		*v = expectValue(x)
	case int, int64, uint64, float64, bool:
		*v = expectValue(fmt.Sprint(x))
	default:
		return errors.New("want a string, number or boolean")
	}
	return nil
}

func (c *integrityParams) check() error {
	if len(c.Checks) == 0 && len(c.AmcheckIndexes) == 0 {
		return errors.New("want at least one of checks or amcheck_indexes")
	}
	seen := map[string]bool{}
	for i := range c.Checks {
		ch := &c.Checks[i]
		key := params.Index("checks", i)
		switch {
		case ch.Name == "":
			return params.Required(key+".name", "")
		case seen[ch.Name]:
			return params.Errorf(key+".name", "duplicate name %q", ch.Name)
		case strings.TrimSpace(ch.SQL) == "":
			return params.Required(key+".sql", "the query")
		}
		seen[ch.Name] = true
		if ch.Expect == "" {
			ch.Expect = ExpectNoRows
		}
	}
	return nil
}

func compilePostgresIntegrity(p config.Probe, cfg *config.Config) (Runner, error) {
	// Each statement is bounded by the probe's timeout unless the params
	// say otherwise.
	return compileKind(p, cfg, &integrityParams{StatementTimeout: p.Timeout}, compilePostgres, postgresIntegrity)
}

// postgresIntegrity runs user-defined SQL invariants and optional amcheck
// index checks, each in its own READ ONLY transaction with a statement
// timeout. The reason names every failing check.
func postgresIntegrity(ctx context.Context, env Env, t pgTarget, c *integrityParams) detect.Result {
	pool, err := env.pgPool(t)
	if err != nil {
		return fail("%v", err)
	}
	red, timeout := t.red, time.Duration(c.StatementTimeout)
	r := newResult()
	failed := 0
	for _, ch := range c.Checks {
		problem, err := runCheck(ctx, pool, timeout, ch)
		if err != nil {
			problem = "error: " + pgErrorMessage(err, red)
		}
		if problem != "" {
			failed++
			r.detail("check."+ch.Name, problem)
			r.failf("check %s failed: %s", ch.Name, problem)
		} else {
			r.detail("check."+ch.Name, "ok")
		}
	}
	for _, idx := range c.AmcheckIndexes {
		err := readOnly(ctx, pool, timeout, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT bt_index_check(index => $1::regclass, heapallindexed => $2)", idx, c.Heapallindexed)
			return err
		})
		if err != nil {
			failed++
			msg := pgErrorMessage(err, red)
			if sqlState(err) == stateUndefinedFunc {
				msg = "amcheck is not installed (CREATE EXTENSION amcheck): " + msg
			}
			r.detail("amcheck."+idx, msg)
			r.failf("amcheck %s failed: %s", idx, msg)
		} else {
			r.detail("amcheck."+idx, "ok")
		}
	}
	r.observe("checks_total", float64(len(c.Checks)+len(c.AmcheckIndexes)))
	r.observe("checks_failed", float64(failed))
	return r.done()
}

// runCheck runs one invariant and returns what is wrong, or "".
func runCheck(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, ch integrityCheck) (string, error) {
	var problem string
	err := readOnly(ctx, pool, timeout, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, ch.SQL, pgx.QueryResultFormats{pgx.TextFormatCode})
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		var first *string
		for rows.Next() {
			if n == 0 {
				if raw := rows.RawValues(); len(raw) > 0 && raw[0] != nil {
					s := textValue(string(raw[0]))
					first = &s
				}
			}
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		switch {
		case ch.Expect == ExpectNoRows && n > 0:
			problem = fmt.Sprintf("%d row(s), want none", n)
		case ch.Expect == ExpectNoRows:
		case n == 0:
			problem = fmt.Sprintf("no rows, want %q", string(ch.Expect))
		case first == nil:
			problem = fmt.Sprintf("got NULL, want %q", string(ch.Expect))
		case *first != textValue(string(ch.Expect)):
			problem = fmt.Sprintf("got %q, want %q", *first, string(ch.Expect))
		}
		return nil
	})
	return problem, err
}

// textValue normalises PostgreSQL's text form of a boolean.
func textValue(s string) string {
	switch s {
	case "t":
		return "true"
	case "f":
		return "false"
	}
	return s
}

// readOnly runs fn in a READ ONLY transaction with a statement timeout and
// rolls it back.
func readOnly(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, fn func(pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = tx.Rollback(cctx)
	}()
	ms := max(timeout.Milliseconds(), 1)
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = "+strconv.FormatInt(ms, 10)); err != nil {
		return err
	}
	return fn(tx)
}

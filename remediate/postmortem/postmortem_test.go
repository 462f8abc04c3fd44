package postmortem_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/postmortem"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the tests write")

// ports, elapsed, wallTimes and times are what differs from run to run
// in the journal: the test service's port, in probe reasons and URLs, how
// long a timed-out process ran (exec measures it), the wall clock's times
// in a probe detection's key, and the clock's start.
var (
	wallTimes = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z`)
	ports     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	elapsed   = regexp.MustCompile(`timed out after [0-9.]+m?s`)
	times     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
)

// golden compares a post-mortem with testdata/NAME.golden, after moving
// its times as if the clock had started at goldenStart.
func (e *env) golden(name, got string) {
	t := e.t
	t.Helper()
	got = ports.ReplaceAllString(got, "127.0.0.1:PORT")
	got = elapsed.ReplaceAllString(got, "timed out after ELAPSED")
	got = wallTimes.ReplaceAllString(got, "WALLTIME")
	got = times.ReplaceAllStringFunc(got, func(s string) string {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return s
		}
		return goldenStart.Add(at.Sub(e.start)).Format(time.RFC3339)
	})
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("post-mortem differs from %s (go test -update rewrites it); got:\n%s", path, got)
	}
}

// load reads an incident's records from the journal.
func (e *env) load(id string) postmortem.Incident {
	e.t.Helper()
	in, err := postmortem.Load(e.store, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// TestResolvedIncident: an Alertmanager alert starts a run; its first
// step captures the database's log, its second waits for an approval
// that alice gives five minutes later from the console; a status update
// goes out meanwhile; the alert resolves and the resolution message goes
// out. The post-mortem tells all of it in order, with nothing to act on.
func TestResolvedIncident(t *testing.T) {
	e := newEnv(t, time.Hour, func(string) *config.Config {
		return &config.Config{Policies: []config.Policy{{Name: "restart-orders-db", Matchers: []string{`alertname="PostgresDown"`},
			Steps: []config.Step{
				{Name: "capture-logs", Action: "exec", Params: argv("sh", "-c", "echo 'FATAL:  the database system is shutting down'; echo 'LOG:  database system was shut down at 2026-03-01 11:58:40 UTC'")},
				{Name: "restart", Action: "exec", Params: argv("echo", "orders-db restarted"), Approval: config.Approval{Required: true, Expires: mdur(30 * time.Minute)}},
			}}}}
	})
	e.alert(detect.StatusFiring, e.start.Add(-time.Minute))
	e.approval("restart")
	e.clock.Advance(2 * time.Minute)
	if n := e.updater.Once(context.Background()); n != 1 {
		t.Fatalf("status updates sent = %d, want 1", n)
	}
	e.clock.Advance(3 * time.Minute)
	a := e.approval("restart")
	if _, err := e.eng.Decide(context.Background(), a.ID, remediate.Decision{Approve: true, Actor: "alice", Remote: "10.0.0.7:52114",
		Comment: "logs show a clean shutdown; safe to restart", Role: config.RoleApprover}); err != nil {
		t.Fatal(err)
	}
	e.incident("the run to succeed", func(_ store.Incident, runs []store.Run) bool {
		return runIn(runs, "restart-orders-db", store.RunSucceeded)
	})
	e.clock.Advance(time.Minute)
	e.alert(detect.StatusResolved, e.start.Add(-time.Minute))
	in, _ := e.incident("the incident to resolve", func(in store.Incident, _ []store.Run) bool { return in.State == store.IncidentResolved })
	e.clock.Advance(time.Minute)
	if n := e.updater.Once(context.Background()); n != 1 {
		t.Fatalf("resolution messages sent = %d, want 1", n)
	}
	link := "https://drguard.example.com/api/v1/incidents/" + in.ID + "/postmortem"
	if sent := e.team.Requests(""); len(sent) != 2 || !strings.Contains(sent[1].Body, link) {
		t.Errorf("the resolution message does not link to the post-mortem %s: %+v", link, sent)
	}
	md := postmortem.IncidentMarkdown(e.load(in.ID))
	e.golden("resolved_incident", md)
	for _, want := range []string{"approved by alice from 10.0.0.7:52114", "Resolution completed", "Users affected: _(to be filled in)_", "FATAL:  the database system"} {
		if !strings.Contains(md, want) {
			t.Errorf("post-mortem lacks %q", want)
		}
	}
}

// TestFailedRun: one alert starts two runs. The first's steps fail in
// every way a step can: an exit status, a timeout, a verification that
// the real http probe refuses, then a destructive step the budget blocks
// once an earlier one spent it. The second's gated step is never decided
// and expires. Each failure gets an action item.
func TestFailedRun(t *testing.T) {
	no, yes := ptr(false), ptr(true)
	e := newEnv(t, time.Hour, func(string) *config.Config {
		return &config.Config{Guardrails: config.Guardrails{DestructiveBudget: 1}, Policies: []config.Policy{
			{Name: "recover-orders-db", Matchers: []string{`alertname="PostgresDown"`}, Steps: []config.Step{
				{Name: "restart", Action: "exec", Destructive: no, OnFailure: config.OnFailureContinue,
					Params: argv("sh", "-c", "echo 'pg_ctl: could not start server' >&2; echo 'Examine the log output.' >&2; exit 3")},
				{Name: "drain", Action: "exec", Destructive: no, OnFailure: config.OnFailureContinue, Timeout: mdur(300 * time.Millisecond), Params: argv("sleep", "5")},
				{Name: "reload", Action: "exec", Destructive: no, OnFailure: config.OnFailureContinue, Params: argv("echo", "reloaded"),
					Verify: &config.Verify{Probe: ordersProbe, Within: mdur(500 * time.Millisecond)}},
				{Name: "fence-old-primary", Action: "exec", Destructive: yes, Params: argv("echo", "fenced")},
				{Name: "failover", Action: "exec", Destructive: yes, Params: argv("echo", "failed over")},
			}},
			{Name: "promote-replica", Matchers: []string{`alertname="PostgresDown"`}, Steps: []config.Step{
				{Name: "promote", Action: "exec", Destructive: no, Params: argv("echo", "promoted"), Approval: config.Approval{Required: true, Expires: mdur(10 * time.Minute)}},
			}},
		}}
	})
	if err := os.WriteFile(e.Down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.alert(detect.StatusFiring, e.start.Add(-time.Minute))
	e.incident("the first run to be blocked", func(_ store.Incident, runs []store.Run) bool {
		return runIn(runs, "recover-orders-db", store.RunBlocked)
	})
	e.approval("promote")
	e.clock.Advance(11 * time.Minute)
	in, _ := e.incident("the approval to expire", func(_ store.Incident, runs []store.Run) bool { return runIn(runs, "promote-replica", store.RunExpired) })
	md := postmortem.IncidentMarkdown(e.load(in.ID))
	e.golden("failed_run", md)
	items := strings.Count(md, "- [ ] ")
	if items != 6 { // restart, drain, reload, failover blocked, promote expired, still open
		t.Errorf("%d action items, want 6:\n%s", items, md)
	}
}

// TestDrillRun: a drill injects a real failure (its exec step makes the
// service answer 503), the http probe detects it, the drill's policy
// recovers it, recovered_when passes. The drill's post-mortem carries its
// RTO and RPO against the objective, the checklist, and the incident,
// which is itself written up as caused by the drill.
func TestDrillRun(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond, func(down string) *config.Config {
		return &config.Config{
			Policies: []config.Policy{{Name: "recover-orders", Matchers: []string{`scenario="db_down"`, `service="orders"`}, Steps: []config.Step{
				{Name: "restart-db", Action: "exec", Destructive: ptr(false), Params: argv("rm", "-f", down)},
			}}},
			Drills: []config.Drill{{Name: "q1-db-restart", Policy: "recover-orders", RecoveredWhen: ordersProbe,
				Inject: config.DrillInject{Steps: []config.Step{{Name: "stop-db", Action: "exec", Params: argv("touch", down)}}}}},
		}
	})
	run, err := e.runner.Start(context.Background(), "q1-db-restart", "bob", "10.0.0.9:40022")
	if err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 30*time.Second, "the drill to end", func() bool {
		run, err = e.runner.Get(run.ID)
		return err == nil && !run.Active()
	})
	if len(run.Incidents) != 1 {
		t.Fatalf("drill incidents = %+v, want 1; run: %+v", run.Incidents, run)
	}
	e.incident("the drill's incident to resolve", func(in store.Incident, _ []store.Run) bool { return in.State == store.IncidentResolved })
	dr, err := postmortem.LoadDrill(e.store, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	md := postmortem.DrillMarkdown(dr)
	e.golden("drill_run", md)
	for _, want := range []string{"RTO achieved", "Testing Checklist", "stop-db (exec)", run.Incidents[0].ID} {
		if !strings.Contains(md, want) {
			t.Errorf("drill post-mortem lacks %q", want)
		}
	}
	inc := postmortem.IncidentMarkdown(e.load(run.Incidents[0].ID))
	e.golden("drill_incident", inc)
	if !strings.Contains(inc, "caused by DR drill **q1-db-restart** (run "+run.ID+")") {
		t.Errorf("the incident's post-mortem does not say the drill caused it:\n%s", inc)
	}
}

// TestUnknownIDs: an unknown incident or drill run is store.ErrNotFound.
func TestUnknownIDs(t *testing.T) {
	e := newEnv(t, time.Hour, func(string) *config.Config { return &config.Config{} })
	if _, err := postmortem.Load(e.store, "inc-999999"); !postmortem.IsNotFound(err) {
		t.Errorf("Load(unknown) = %v, want not found", err)
	}
	if _, err := postmortem.LoadDrill(e.store, "drl-999999"); !postmortem.IsNotFound(err) {
		t.Errorf("LoadDrill(unknown) = %v, want not found", err)
	}
}

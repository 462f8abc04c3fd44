package app

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestHAPartitionFromTheJournal cuts the network between the leader and
// the journal (a TCP proxy, toxiproxy as a library) while its step runs:
// the old leader stops leading before its lease expires; a follower takes
// over after the expiry and records the step interrupted, and runs the
// steps of alerts that arrive meanwhile; once the path is restored, the
// old leader's step ends and its late write of the outcome is refused by
// the epoch (drguard_fenced_writes_total); no step runs twice.
func TestHAPartitionFromTheJournal(t *testing.T) {
	// The step outlives the partition: it ends after the old leader's
	// term, and its outcome is the old leader's late write.
	c := newHACluster(t, haSlowStep(7))
	u, err := url.Parse(c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testharness.NewTCPProxy(t, "journal-a", u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.Addr
	a := c.start(0, viaProxy.String())
	c.waitLeader(20 * time.Second)
	c.start(1, "")
	if l := c.waitLeader(10 * time.Second); l != 0 {
		t.Fatalf("replica %d leads, want the first (0)", l)
	}
	if !c.post(1, "firing", "HASlow", "p1") {
		t.Fatal("the follower did not take the webhook")
	}
	testharness.Eventually(t, 15*time.Second, "the leader to start the step", func() bool { return c.marks("p1.started") == 1 })

	proxy.Cut()
	cut := time.Now()
	var expires time.Time
	var epoch int64
	if err := c.pg.QueryRow(context.Background(), c.dsn, "SELECT expires_at, epoch FROM journal_leases WHERE name = 'leader'", &expires, &epoch); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, haTTL+time.Second, "the partitioned leader to stop leading", func() bool { return gauge(a, "drguard_leader") == 0 })
	stopped := time.Now()
	t.Logf("partitioned leader stopped %s after the cut, %s before its lease (epoch %d) expired", stopped.Sub(cut).Round(10*time.Millisecond),
		expires.Sub(stopped).Round(10*time.Millisecond), epoch)
	if !stopped.Before(expires) {
		t.Errorf("the old leader stopped leading at %s, after its lease expired at %s", stopped, expires)
	}
	if !c.post(1, "firing", "HASlow", "p2") {
		t.Fatal("the follower did not take a webhook during the partition")
	}
	testharness.Eventually(t, haTTL+10*time.Second, "the follower to take over", func() bool { return gauge(c.replicas[1], "drguard_leader") == 1 })
	if took := time.Now(); took.Before(expires) {
		t.Errorf("the follower led at %s, before the old lease expired at %s", took, expires)
	}
	testharness.Eventually(t, 10*time.Second, "the new leader to record the step interrupted", func() bool {
		_, run := c.runOf(1, "HASlow", "p1")
		return run != nil && run.State == store.RunInterrupted
	})
	testharness.Eventually(t, 10*time.Second, "the new leader to start the step of the alert it took", func() bool { return c.marks("p2.started") == 1 })

	proxy.Restore()
	testharness.Eventually(t, 15*time.Second, "the old leader's step to end and its outcome to be refused", func() bool {
		return c.marks("p1.done") == 1 && gauge(a, "drguard_fenced_writes_total") >= 1
	})
	_, run := c.runOf(1, "HASlow", "p1")
	if run.State != store.RunInterrupted || run.Steps[0].Attempts != 1 {
		t.Errorf("run %s, step attempted %d times; want interrupted after 1: the late outcome must not be recorded", run.State, run.Steps[0].Attempts)
	}
	time.Sleep(time.Second)
	for _, m := range []string{"p1.started", "p2.started"} {
		if got := c.marks(m); got != 1 {
			t.Errorf("%s: %d marks, want 1 (no step runs twice)", m, got)
		}
	}
	if l := c.leaders(); len(l) != 1 || l[0] != 1 {
		t.Errorf("leaders %v after the partition healed, want [1]", l)
	}
}

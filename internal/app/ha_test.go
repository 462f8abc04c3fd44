package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// haSlowStep is a policy whose one step marks its start, sleeps for
// seconds, then marks its end: a step that a kill or a partition catches
// running. Its one verb is the directory of marks.
func haSlowStep(seconds int) string {
	return fmt.Sprintf(`
policies:
  - name: slow
    matchers: ['alertname="HASlow"']
    steps:
      - name: work
        action: exec
        params:
          argv: ["sh", "-c", 'mkdir "$0.started" && sleep %d && mkdir "$0.done"', "%%s/{{ .Labels.target }}"]
`, seconds)
}

// TestHAFailoverOnKill9 runs two, then three, replicas on one PostgreSQL
// journal: exactly one leads; a follower takes a webhook whose step the
// leader starts; kill -9 of the leader while the step runs makes a
// follower lead within the lease's ttl + 2 s (the figure is printed); the
// step is recorded interrupted and not run again, and the incident goes
// on: the resolution that a replica takes afterwards resolves it.
func TestHAFailoverOnKill9(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(map[int]string{2: "two replicas", 3: "three replicas"}[n], func(t *testing.T) {
			c := newHACluster(t, haSlowStep(4))
			for i := range n {
				c.start(i, "")
			}
			lead := c.waitLeader(20 * time.Second)
			if !c.post(c.follower(lead), "firing", "HASlow", "t1") {
				t.Fatal("a follower did not take the webhook")
			}
			testharness.Eventually(t, 15*time.Second, "the step to start", func() bool { return c.marks("t1.started") == 1 })

			c.kill(lead)
			killed := time.Now()
			var next int
			testharness.Eventually(t, haTTL+10*time.Second, "a follower to lead", func() bool {
				l := c.leaders()
				if len(l) > 1 {
					t.Fatalf("replicas %v all lead", l)
				}
				if len(l) == 1 {
					next = l[0]
				}
				return len(l) == 1
			})
			failover := time.Since(killed)
			t.Logf("%d replicas: a follower led %s after kill -9 of the leader (lease ttl %s)", n, failover.Round(10*time.Millisecond), haTTL)
			if failover > haTTL+2*time.Second {
				t.Errorf("failover took %s, want at most the ttl %s + 2s", failover, haTTL)
			}

			var run *store.Run
			testharness.Eventually(t, 10*time.Second, "the run to be recorded interrupted", func() bool {
				_, run = c.runOf(next, "HASlow", "t1")
				return run != nil && run.State == store.RunInterrupted
			})
			if st := run.Steps[0]; st.State != store.StepInterrupted || st.Attempts != 1 {
				t.Errorf("step %s after %d attempts, want interrupted after 1", st.State, st.Attempts)
			}
			if !c.post(next, "resolved", "HASlow", "t1") {
				t.Fatal("the new leader did not take the resolution")
			}
			testharness.Eventually(t, 10*time.Second, "the incident to resolve", func() bool {
				in, _ := c.runOf(next, "HASlow", "t1")
				return in.State == store.IncidentResolved
			})
			time.Sleep(time.Second) // the new leader's chance to re-run it
			if got := c.marks("t1.started"); got != 1 {
				t.Errorf("the step started %d times, want once", got)
			}
			if l := c.leaders(); len(l) != 1 || l[0] != next {
				t.Errorf("leaders %v after the failover, want [%d]", l, next)
			}
		})
	}
}

package app

import (
	"slices"
	"testing"
	"time"
)

// failoverKills is how many leaders BenchmarkLeaderFailover kills.
const failoverKills = 10

// BenchmarkLeaderFailover measures, over ten kills, the time from kill -9
// of the leader to a follower leading (drguard_leader 1), with two
// replicas on one PostgreSQL journal and the tests' lease (ttl 3s, renewed
// every 500ms); the killed replica is restarted between kills. It reports
// the median and the maximum, and both minus the ttl: what the election
// adds to the lease's expiry. Run it with -benchtime 1x (make bench).
func BenchmarkLeaderFailover(b *testing.B) {
	for range b.N {
		c := newHACluster(b, haQuickStep)
		c.start(0, "")
		c.start(1, "")
		var times []time.Duration
		for range failoverKills {
			lead := c.waitLeader(30 * time.Second)
			// Kill at a random point of the renewal cycle.
			time.Sleep(time.Duration(time.Now().UnixNano()%500) * time.Millisecond)
			c.kill(lead)
			killed := time.Now()
			for {
				if l := c.leaders(); len(l) == 1 && l[0] != lead {
					break
				}
				if time.Since(killed) > 30*time.Second {
					b.Fatal("no follower led within 30s of the kill")
				}
				time.Sleep(20 * time.Millisecond)
			}
			times = append(times, time.Since(killed))
			c.start(lead, "")
		}
		slices.Sort(times)
		median, worst := times[len(times)/2], times[len(times)-1]
		b.ReportMetric(median.Seconds(), "median-s")
		b.ReportMetric(worst.Seconds(), "max-s")
		b.Logf("leader failover after kill -9, %d kills, lease ttl %s: median %s, max %s (ttl + %s, ttl + %s); all %v",
			failoverKills, haTTL, median.Round(10*time.Millisecond), worst.Round(10*time.Millisecond),
			(median - haTTL).Round(10*time.Millisecond), (worst - haTTL).Round(10*time.Millisecond), times)
	}
}

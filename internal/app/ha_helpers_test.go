package app

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// The HA tests run `drguard serve` replicas on one PostgreSQL journal with
// a short lease, so that a failover takes seconds.
const (
	haTTL   = 3 * time.Second
	haLease = "{ttl: 3s, renew_interval: 500ms, renew_deadline: 2s}"
)

// haCluster is replicas of drguard on one real PostgreSQL journal.
type haCluster struct {
	t    testing.TB
	pg   *testharness.PG
	dsn  string // the journal, as the test reaches it
	dir  string
	out  string // where the policies' steps leave marks
	body string // the configuration without storage
	// replicas by index; a killed one stays until restarted.
	replicas []*daemon
	dsns     []string
	// addrs keeps each replica's address across restarts.
	addrs []string
}

// newHACluster prepares a journal and a configuration of baseConfig plus
// policy, a format whose one verb is the directory of marks.
func newHACluster(t testing.TB, policy string) *haCluster {
	t.Helper()
	pg := testharness.Postgres(t, testharness.NoReplica())
	pg.CreateDB("journal")
	dir := t.TempDir()
	c := &haCluster{t: t, pg: pg, dsn: pg.PrimaryDSN("journal"), dir: dir, out: filepath.Join(dir, "out")}
	if err := os.Mkdir(c.out, 0o755); err != nil {
		t.Fatal(err)
	}
	c.body = baseConfig + fmt.Sprintf(policy, c.out)
	return c
}

// start starts replica i (again) on the journal at dsn ("" for the
// test's).
func (c *haCluster) start(i int, dsn string) *daemon {
	c.t.Helper()
	if dsn == "" {
		dsn = c.dsn
	}
	for len(c.replicas) <= i {
		c.replicas, c.dsns, c.addrs = append(c.replicas, nil), append(c.dsns, ""), append(c.addrs, freeAddr(c.t))
	}
	cfg := filepath.Join(c.dir, fmt.Sprintf("replica-%d.yaml", i))
	storage := fmt.Sprintf("storage: {type: postgres, dsn: '%s', lease: %s}\n", dsn, haLease)
	if err := os.WriteFile(cfg, []byte(c.body+storage), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.replicas[i] = startChild(c.t, c.addrs[i], []string{daemonEnv + "=1"}, "serve", "--config.file="+cfg,
		"--web.listen-address="+c.addrs[i], "--log.level=warn")
	c.dsns[i] = dsn
	return c.replicas[i]
}

// url is replica i's address, stable across restarts.
func (c *haCluster) url(i int) string {
	for len(c.addrs) <= i {
		c.replicas, c.dsns, c.addrs = append(c.replicas, nil), append(c.dsns, ""), append(c.addrs, freeAddr(c.t))
	}
	return "http://" + c.addrs[i]
}

// kill sends SIGKILL to replica i and waits for it.
func (c *haCluster) kill(i int) {
	c.t.Helper()
	c.replicas[i].kill()
}

// alive reports whether replica i runs.
func (c *haCluster) alive(i int) bool {
	return c.replicas[i] != nil && c.replicas[i].cmd.ProcessState == nil
}

// leaders returns the replicas that say they lead (drguard_leader 1).
func (c *haCluster) leaders() []int {
	var out []int
	for i := range c.replicas {
		if c.alive(i) && gauge(c.replicas[i], "drguard_leader") == 1 {
			out = append(out, i)
		}
	}
	return out
}

// waitLeader waits until exactly one replica leads, and stays so for a
// renewal or two, and returns it.
func (c *haCluster) waitLeader(within time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(within)
	stable, last := 0, -1
	for time.Now().Before(deadline) {
		switch l := c.leaders(); {
		case len(l) > 1:
			c.t.Fatalf("replicas %v all say they lead", l)
		case len(l) == 1 && l[0] == last:
			if stable++; stable >= 5 {
				return last
			}
		case len(l) == 1:
			stable, last = 0, l[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("no single leader within %s (leaders %v)", within, c.leaders())
	return -1
}

// follower returns a live replica other than leader.
func (c *haCluster) follower(leader int) int {
	for i := range c.replicas {
		if i != leader && c.alive(i) {
			return i
		}
	}
	c.t.Fatal("no follower alive")
	return -1
}

// marks counts the marks name.* in the marks directory.
func (c *haCluster) marks(name string) int {
	c.t.Helper()
	m, err := filepath.Glob(filepath.Join(c.out, name+"*"))
	if err != nil {
		c.t.Fatal(err)
	}
	return len(m)
}

// post sends a webhook with one alert per target to replica i and
// reports whether it was answered 200.
func (c *haCluster) post(i int, status, alertname string, targets ...string) bool {
	var alerts []map[string]string
	for _, tg := range targets {
		alerts = append(alerts, map[string]string{"alertname": alertname, "target": tg, "fp": alertname + "-" + tg})
	}
	body := webhook(status, haStart, alerts...)
	code, _, err := testharness.Send(http.MethodPost, c.replicas[i].URL+"/api/v1/alerts", webhookToken, bytes.NewReader(body))
	return err == nil && code == http.StatusOK
}

// haStart is the startsAt of the HA tests' alerts: repeats share it.
var haStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// runOf returns the incident of alertname on target and its first run,
// as replica i reads the journal.
func (c *haCluster) runOf(i int, alertname, target string) (store.Incident, *store.Run) {
	c.t.Helper()
	in := c.incidents(i, alertname)[target]
	if len(in.RunIDs) == 0 {
		return in, nil
	}
	var detail struct{ Runs []store.Run }
	getJSON(c.t, c.replicas[i].URL+"/api/v1/incidents/"+in.ID, &detail)
	return in, &detail.Runs[0]
}

// incidents returns the incidents of alertname by target, as replica i
// reads the journal; a target with several incidents is left out.
func (c *haCluster) incidents(i int, alertname string) map[string]store.Incident {
	c.t.Helper()
	all, _ := pageAll(c.t, c.replicas[i].URL, nil)
	out, n := map[string]store.Incident{}, map[string]int{}
	for _, in := range all {
		if in.Labels["alertname"] == alertname {
			tg := in.Labels["target"]
			out[tg] = in
			if n[tg]++; n[tg] > 1 {
				c.t.Errorf("%d incidents of %s on %s, want one", n[tg], alertname, tg)
			}
		}
	}
	return out
}

// gauge reads one unlabelled sample from a replica's /metrics; -1 when it
// cannot be read.
func gauge(d *daemon, name string) float64 {
	code, body, err := testharness.Send(http.MethodGet, d.URL+"/metrics", "", nil)
	if err != nil || code != http.StatusOK {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

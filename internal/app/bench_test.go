package app

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// BenchmarkIntake drives POST /api/v1/alerts with concurrent keep-alive
// clients posting 5-alert webhooks. The server is a separate process, so
// the load generator does not compete with it for the Go scheduler; with
// cpus=1 it is confined to one CPU with GOMAXPROCS=1 (a 1-CPU container),
// with cpus=2 it has the machine's two. It measures drguard's durable
// intake (the whole daemon: auth, decode, group-committed journal write,
// the engine processing the outbox) into the embedded journal ("durable")
// and into a PostgreSQL journal ("postgres", at 64 connections: a local
// server with fsync on, a new database per run) beside a no-persistence
// handler (auth, decode, 200) in the same run.
func BenchmarkIntake(b *testing.B) {
	dir := b.TempDir()
	cfgFile := filepath.Join(dir, "drguard.yaml")
	if err := os.WriteFile(cfgFile, []byte(baseConfig), 0o600); err != nil {
		b.Fatal(err)
	}
	journals := newBenchJournals(b, dir)
	for _, cpus := range []int{1, 2} {
		for _, conns := range []int{8, 64} {
			for _, mode := range []string{"nopersist", "durable", "postgres"} {
				if mode == "postgres" && conns != 64 {
					continue
				}
				b.Run(fmt.Sprintf("%s/cpus=%d/conns=%d", mode, cpus, conns), func(b *testing.B) {
					var d *daemon
					var env []string
					if cpus == 1 {
						env = []string{"GOMAXPROCS=1", cpusEnv + "=1"}
					}
					switch mode {
					case "durable":
						d = startDaemon(b, cfgFile, b.TempDir(), env...)
					case "postgres":
						d = startDaemon(b, journals.config(b), b.TempDir(), env...)
					default:
						d = startNoPersist(b, env...)
					}
					cpu0 := childCPU(b, d)
					drive(b, d.URL, conns)
					b.ReportMetric(float64((childCPU(b, d)-cpu0).Microseconds())/float64(b.N), "server-cpu-us/req")
					d.kill()
				})
			}
		}
	}
}

// drive posts b.N webhooks over conns keep-alive connections and reports
// throughput and latency percentiles. The requests are built before the
// clock starts and written as raw HTTP/1.1, so that the load generator,
// which shares the machine's CPUs with the server, spends as little of
// them as it can; each connection is opened and used once before the
// clock starts, so that connection set-up is not measured.
func drive(b *testing.B, url string, conns int) {
	addr := strings.TrimPrefix(url, "http://")
	reqs := make([][]byte, b.N+conns) // the last conns warm the connections up
	for i := range reqs {
		body := benchBody(int64(i + 1))
		head := fmt.Sprintf("POST /api/v1/alerts HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, webhookToken, len(body))
		reqs[i] = append([]byte(head), body...)
	}
	clients := make([]*benchClient, conns)
	err := parallel(conns, func(c int) error {
		cl, err := dialBench(addr)
		if err == nil {
			clients[c] = cl
			err = cl.post(reqs[b.N+c])
		}
		return err
	})
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.conn.Close()
			}
		}
	}()
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	lat := make([][]time.Duration, conns)
	b.ResetTimer()
	start := time.Now()
	err = parallel(conns, func(c int) error {
		for n := seq.Add(1); n <= int64(b.N); n = seq.Add(1) {
			t0 := time.Now()
			if err := clients[c].post(reqs[n-1]); err != nil {
				return fmt.Errorf("webhook %d: %w", n, err)
			}
			lat[c] = append(lat[c], time.Since(t0))
		}
		return nil
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	pct := percentiles(lat)
	rps := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rps, "req/s")
	b.ReportMetric(rps*5, "alerts/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// percentiles merges the latencies of every connection and returns a
// function giving the p-th quantile (0 to 1) in milliseconds.
func percentiles(lat [][]time.Duration) func(p float64) float64 {
	all := slices.Concat(lat...)
	slices.Sort(all)
	return func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
}

// parallel runs fn(0..n-1) concurrently and returns the first error.
func parallel(n int, fn func(int) error) error {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fn(i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// benchClient is one keep-alive connection of the load generator.
type benchClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialBench(addr string) (*benchClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &benchClient{conn: conn, br: bufio.NewReader(conn)}, nil
}

// post sends one prebuilt request and reads its answer, which must be 200.
func (c *benchClient) post(req []byte) error {
	if _, err := c.conn.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// benchBody is a 5-alert webhook with unique fingerprints.
func benchBody(n int64) []byte {
	alerts := make([]map[string]string, 5)
	for i := range alerts {
		id := fmt.Sprintf("bench-%d-%d", n, i)
		alerts[i] = map[string]string{"alertname": "BenchAlert", "service": "demo", "scenario": "bench", "target": id, "fp": id, "instance": "10.0.0.1:9100", "job": "node"}
	}
	return webhook("firing", time.Unix(1_700_000_000, 0).UTC(), alerts...)
}

// childCPU returns the CPU time a child server has used so far (user and
// system, from /proc), for the server's CPU per request.
func childCPU(b *testing.B, d *daemon) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// benchJournals hands each postgres run a configuration whose journal is
// a new database on one PostgreSQL server, started (lazily, by the first
// run that needs it) with fsync on: the durability the embedded journal's
// O_DSYNC writes have.
type benchJournals struct {
	b   *testing.B
	dir string
	pg  *testharness.PG
	n   int
}

func newBenchJournals(b *testing.B, dir string) *benchJournals {
	return &benchJournals{b: b, dir: dir}
}

// config creates a database and returns a configuration file using it.
func (j *benchJournals) config(b *testing.B) string {
	b.Helper()
	if j.pg == nil {
		j.pg = testharness.Postgres(j.b, testharness.NoReplica(), testharness.PGConf("fsync", "on"),
			testharness.PGConf("full_page_writes", "on"), testharness.PGConf("max_connections", "100"))
	}
	j.n++
	db := fmt.Sprintf("journal%d", j.n)
	j.pg.CreateDB(db)
	file := filepath.Join(j.dir, db+".yaml")
	cfg := baseConfig + "storage: {type: postgres, dsn: '" + j.pg.PrimaryDSN(db) + "'}\n"
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return file
}

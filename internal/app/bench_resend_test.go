package app

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// resendPolicy is a policy matching the benchmark's alerts: each new
// incident opens a run of one quick step.
const resendPolicy = `
policies:
  - name: bench
    matchers: ['alertname="BenchAlert"']
    steps:
      - name: note
        action: exec
        params:
          argv: ["true"]
`

// BenchmarkIntakeResend measures what Alertmanager sends most: the same
// groups again. A closed-loop load generator in the benchmark process (64
// goroutines, each with its own keep-alive connection, on the machine's
// CPUs beside the server, as wrk would be) re-sends one static 5-alert
// webhook with the Authorization header set, for a 1 s warm-up and then
// DRGUARD_BENCH_WINDOW (default 10 s) measured, to each of: the
// no-persistence handler, drguard with a policy matching the alerts, and
// drguard with no policy. Each server is a fresh child process (both
// CPUs); the three are run in turn, DRGUARD_BENCH_REPS times (default 3),
// and the medians are printed with the ratio to the no-persistence
// handler of the same repetition. It ignores b.N: run it with
// -benchtime 1x. DRGUARD_BENCH_MODES picks some of the three (comma
// separated), e.g. one drguard alone while DRGUARD_TEST_PPROF_ADDR serves
// its profiles.
func BenchmarkIntakeResend(b *testing.B) {
	window := 10 * time.Second
	if v := os.Getenv("DRGUARD_BENCH_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		window = d
	}
	reps := 3
	if v := os.Getenv("DRGUARD_BENCH_REPS"); v != "" {
		if _, err := fmt.Sscan(v, &reps); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	configs := map[string]string{"policy": baseConfig + resendPolicy, "nopolicy": baseConfig}
	for name, cfg := range configs {
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(cfg), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	body := benchBody(1) // one static payload, re-sent
	modes := []string{"nopersist", "policy", "nopolicy"}
	if v := os.Getenv("DRGUARD_BENCH_MODES"); v != "" {
		modes = strings.Split(v, ",") // e.g. "nopolicy" alone, for a profile
	}
	results := map[string][]loadResult{}
	for rep := range reps {
		for _, mode := range modes {
			var d *daemon
			if mode == "nopersist" {
				d = startNoPersist(b)
			} else {
				d = startDaemon(b, filepath.Join(dir, mode+".yaml"), b.TempDir())
			}
			cpu0 := childCPU(b, d)
			r := closedLoop(b, d.URL, body, 64, time.Second, window)
			r.cpuPerReq = float64((childCPU(b, d) - cpu0).Microseconds()) / float64(r.warm+r.n)
			d.kill()
			fmt.Printf("rep %d %-9s %8.0f req/s  p50 %5.2f ms  p99 %6.2f ms  server CPU %5.1f µs/req\n",
				rep+1, mode, r.rps, r.p50, r.p99, r.cpuPerReq)
			results[mode] = append(results[mode], r)
		}
	}
	base := results["nopersist"]
	for _, mode := range modes {
		rs := results[mode]
		ratios := make([]float64, len(rs))
		for i, r := range rs {
			if len(base) > i {
				ratios[i] = r.rps / base[i].rps
			}
		}
		med := func(f func(loadResult) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			return median(v)
		}
		rps, p50, p99 := med(func(r loadResult) float64 { return r.rps }), med(func(r loadResult) float64 { return r.p50 }), med(func(r loadResult) float64 { return r.p99 })
		fmt.Printf("median %-9s %8.0f req/s  ratio %.2f× (runs %s)  p50 %5.2f ms  p99 %6.2f ms  server CPU %5.1f µs/req\n",
			mode, rps, median(ratios), fmtRatios(ratios), p50, p99, med(func(r loadResult) float64 { return r.cpuPerReq }))
		b.ReportMetric(rps, mode+"-req/s")
		b.ReportMetric(p99, mode+"-p99-ms")
		if mode != "nopersist" {
			b.ReportMetric(median(ratios), mode+"-ratio")
		}
	}
}

// loadResult is one closed-loop run: measured requests, throughput and
// latency percentiles (ms), and the server's CPU per request (µs, warm-up
// included).
type loadResult struct {
	warm, n       int
	rps, p50, p99 float64
	cpuPerReq     float64
}

// closedLoop re-sends body over conns keep-alive connections, each posting
// its next request as soon as the previous one is answered, for warm and
// then window; only the requests sent within window are measured.
func closedLoop(b *testing.B, url string, body []byte, conns int, warm, window time.Duration) loadResult {
	b.Helper()
	addr := strings.TrimPrefix(url, "http://")
	head := fmt.Sprintf("POST /api/v1/alerts HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, webhookToken, len(body))
	req := append([]byte(head), body...)
	clients := make([]*benchClient, conns)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.conn.Close()
			}
		}
	}()
	if err := parallel(conns, func(c int) error {
		cl, err := dialBench(addr)
		clients[c] = cl
		return err
	}); err != nil {
		b.Fatal(err)
	}
	var measuring, stop atomic.Bool
	var warmed atomic.Int64
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				t0 := time.Now()
				if err := clients[c].post(req); err != nil {
					errs <- err
					return
				}
				if measuring.Load() {
					lat[c] = append(lat[c], time.Since(t0))
				} else {
					warmed.Add(1)
				}
			}
		}()
	}
	time.Sleep(warm)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(window)
	stop.Store(true)
	elapsed := time.Since(start)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	pct := percentiles(lat)
	return loadResult{
		warm: int(warmed.Load()), n: len(all), rps: float64(len(all)) / elapsed.Seconds(),
		p50: pct(0.50), p99: pct(0.99),
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(v []float64) string {
	parts := make([]string, len(v))
	for i, r := range v {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, ", ")
}

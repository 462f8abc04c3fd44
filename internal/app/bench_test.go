package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkIntake drives POST /api/v1/alerts with concurrent keep-alive
// clients posting 5-alert webhooks. The server is a separate process with
// its own GOMAXPROCS (1 is a 1-CPU container), so the load generator does
// not compete with it for the Go scheduler: drguard's durable intake (the
// whole daemon: auth, decode, group-committed journal write, the engine
// processing the outbox) beside a no-persistence handler (auth, decode,
// 200) measured in the same run.
func BenchmarkIntake(b *testing.B) {
	dir := b.TempDir()
	cfgFile := filepath.Join(dir, "drguard.yaml")
	if err := os.WriteFile(cfgFile, []byte(baseConfig), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, procs := range []int{1, 2} {
		for _, conns := range []int{8, 64} {
			for _, mode := range []string{"nopersist", "durable"} {
				b.Run(fmt.Sprintf("%s/procs=%d/conns=%d", mode, procs, conns), func(b *testing.B) {
					var d *daemon
					env := []string{fmt.Sprintf("GOMAXPROCS=%d", procs)}
					if mode == "durable" {
						d = startDaemon(b, cfgFile, b.TempDir(), env...)
					} else {
						d = startNoPersist(b, env...)
					}
					drive(b, d.URL, conns)
					d.kill()
				})
			}
		}
	}
}

// drive posts b.N webhooks over conns keep-alive connections and reports
// throughput and latency percentiles.
func drive(b *testing.B, url string, conns int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}, Timeout: 30 * time.Second}
	var seq atomic.Int64
	lat := make([][]time.Duration, conns)
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				n := seq.Add(1)
				if n > int64(b.N) {
					return
				}
				body := benchBody(n)
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/alerts", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+webhookToken)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests failed", f)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	rps := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rps, "req/s")
	b.ReportMetric(rps*5, "alerts/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
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

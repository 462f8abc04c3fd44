package probe

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// BenchmarkHTTPAttempt measures one attempt of a compiled http probe with
// a body_regexp against a local server: the allocations per attempt show
// that nothing is decoded or compiled again (the params were decoded and
// the regexp compiled by Compile, once).
func BenchmarkHTTPAttempt(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	b.Cleanup(srv.Close)
	cfg := &config.Config{Targets: config.Targets{HTTP: []config.HTTPTarget{{Name: "web", URL: srv.URL}}}}
	env, _ := testEnv(b, cfg)
	p := mkProbe("http", "http", "web", time.Second,
		map[string]any{"path": "/api/health/readiness", "body_regexp": "re+ady", "expect_status": []any{200}, "max_latency": "1s"})
	set, err := env.Compile([]config.Probe{p})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := set.Run(ctx, p); !r.OK {
			b.Fatal(r.Reason)
		}
	}
}

// BenchmarkProbes100 runs 100 http probes at 1 s intervals (with jitter)
// against a local httptest server for a window (DRGUARD_BENCH_WINDOW,
// default 10s) and prints the process's CPU time per second of wall time
// and its RSS. The server runs in the same process, so the CPU figure
// includes serving the requests: an upper bound for the probes alone.
// The RSS is split, before the probes are compiled and at the end, into
// anonymous memory (the Go heap, stacks, runtime) and file-backed pages
// (the test binary's code and data the process has touched), so that
// what the probes cost shows apart from what linking costs.
//
//	go test ./detect/probe/ -run '^$' -bench Probes100 -benchtime 1x
func BenchmarkProbes100(b *testing.B) {
	window := 10 * time.Second
	if s := os.Getenv("DRGUARD_BENCH_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		window = d
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	b.Cleanup(srv.Close)
	cfg := &config.Config{Targets: config.Targets{HTTP: []config.HTTPTarget{{Name: "web", Service: "shop", URL: srv.URL}}}}
	env, m := testEnv(b, cfg)
	before := readRSS()
	probes := make([]config.Probe, 100)
	for i := range probes {
		probes[i] = mkProbe(fmt.Sprintf("http-%03d", i), "http", "web", time.Second,
			map[string]any{"path": "/api/health/readiness", "body_regexp": "ready"})
	}
	set, err := env.Compile(probes)
	if err != nil {
		b.Fatal(err)
	}
	var attempts, failures atomic.Int64
	run := func(ctx context.Context, p config.Probe) detect.Result {
		r := set.Run(ctx, p)
		attempts.Add(1)
		if !r.OK {
			failures.Add(1)
		}
		return r
	}
	for range b.N {
		s, err := detect.NewScheduler(detect.SchedulerOptions{Probes: probes, Run: run, Metrics: m,
			Emit: func(context.Context, detect.Detection) error { return nil }})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), window)
		cpu0, wall0 := cpuTime(), time.Now()
		_ = s.Run(ctx)
		cancel()
		cpu, wall := cpuTime()-cpu0, time.Since(wall0)
		after := readRSS()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		perSec := cpu.Seconds() / wall.Seconds()
		b.ReportMetric(perSec*1000, "cpu-ms/s")
		b.ReportMetric(after.total, "rss-MiB")
		b.ReportMetric(after.anon-before.anon, "anon-growth-MiB")
		b.ReportMetric(float64(attempts.Load())/wall.Seconds(), "attempts/s")
		fmt.Printf("BenchmarkProbes100: 100 http probes @1s for %s: %d attempts (%d failed), CPU %s (%.1f ms per s = %.2f%% of one core), RSS %s (peak %.1f MiB); before the probes %s; Go heap in use %.1f MiB\n",
			wall.Round(time.Millisecond), attempts.Load(), failures.Load(), cpu.Round(time.Millisecond),
			perSec*1000, perSec*100, after, float64(procStatusKB("VmHWM"))/1024, before, float64(ms.HeapInuse)/(1<<20))
		attempts.Store(0)
		failures.Store(0)
	}
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is the process's resident memory in MiB: in all, anonymous and
// file-backed.
type rss struct{ total, anon, file float64 }

func readRSS() rss {
	return rss{float64(procStatusKB("VmRSS")) / 1024, float64(procStatusKB("RssAnon")) / 1024, float64(procStatusKB("RssFile")) / 1024}
}

func (r rss) String() string {
	return fmt.Sprintf("%.1f MiB (anon %.1f, file %.1f)", r.total, r.anon, r.file)
}

// procStatusKB reads a kB field of /proc/self/status (0 when unavailable).
func procStatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

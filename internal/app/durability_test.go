package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// daemon is a drguard process started from the test binary.
type daemon struct {
	cmd *exec.Cmd
	URL string
	log *os.File
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDaemon runs `drguard serve` as a child process and waits until it
// answers /healthz. env adds environment variables.
func startDaemon(t testing.TB, configFile, storage string, env ...string) *daemon {
	t.Helper()
	addr := freeAddr(t)
	return startChild(t, addr, append(env, daemonEnv+"=1"), "serve", "--config.file="+configFile, "--storage.path="+storage, "--web.listen-address="+addr, "--log.level=warn")
}

// startNoPersist runs the no-persistence webhook handler as a child.
func startNoPersist(t testing.TB, env ...string) *daemon {
	t.Helper()
	addr := freeAddr(t)
	return startChild(t, addr, append(env, daemonEnv+"=nopersist"), addr)
}

// cpusEnv in a child's environment names the CPUs it may run on.
const cpusEnv = "DRGUARD_TEST_CPUS"

// startChild runs the test binary with args and env and waits until addr
// answers /healthz.
func startChild(t testing.TB, addr string, env []string, args ...string) *daemon {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "daemon-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range env {
		// A child confined to some CPUs, as in a container with a CPU
		// limit, runs under taskset.
		if cpus, ok := strings.CutPrefix(kv, cpusEnv+"="); ok {
			cmd = exec.Command("taskset", append([]string{"-c", cpus, os.Args[0]}, args...)...)
		}
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, URL: "http://" + addr, log: logf}
	t.Cleanup(func() { d.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(d.URL + "/healthz"); err == nil {
			resp.Body.Close()
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _ := os.ReadFile(logf.Name())
	t.Fatalf("drguard did not start:\n%s", out)
	return nil
}

func (d *daemon) kill() {
	if d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
	}
}

// TestDurableIntakeSurvivesKill9 posts webhooks concurrently, kills drguard
// with SIGKILL at a random moment, restarts it on the same journal, and
// checks that every alert that got a 200 is journaled and processed exactly
// once.
func TestDurableIntakeSurvivesKill9(t *testing.T) {
	cfgFile, out, storage := daemonFiles(t, `
policies:
  - name: durable
    matchers: ['alertname="Durable"']
    steps:
      - name: mark
        action: exec
        params:
          argv: ["mkdir", "%s/{{ .Labels.target }}"]
`)
	d := startDaemon(t, cfgFile, storage)

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 10000; i++ {
				ids := []string{fmt.Sprintf("w%d-%d-a", w, i), fmt.Sprintf("w%d-%d-b", w, i)}
				var alerts []map[string]string
				for _, id := range ids {
					alerts = append(alerts, map[string]string{"alertname": "Durable", "target": id, "fp": id})
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.URL+"/api/v1/alerts", strings.NewReader(string(webhook("firing", time.Now().UTC(), alerts...))))
				req.Header.Set("Authorization", "Bearer "+webhookToken)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					time.Sleep(10 * time.Millisecond) // the daemon is gone; keep trying until told to stop
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no webhook was acknowledged before the kill; the test proves nothing")
	}
	t.Logf("%d alerts acknowledged before SIGKILL", len(acked))

	d2 := startDaemon(t, cfgFile, storage)
	var incidents []store.Incident
	testharness.Eventually(t, 60*time.Second, "every acknowledged alert to be processed", func() bool {
		incidents, _ = pageAll(t, d2.URL, url.Values{"limit": {"1000"}})
		seen := map[string]bool{}
		for _, in := range incidents {
			if len(in.RunIDs) > 0 {
				seen[in.Labels["target"]] = true
			}
		}
		for id := range acked {
			if !seen[id] {
				return false
			}
		}
		return true
	})
	perTarget := map[string]int{}
	for _, in := range incidents {
		perTarget[in.Labels["target"]]++
		if len(in.RunIDs) != 1 {
			t.Errorf("incident %s (%s) has %d runs, want exactly 1", in.ID, in.Labels["target"], len(in.RunIDs))
		}
	}
	for id, n := range perTarget {
		if n != 1 {
			t.Errorf("alert %s opened %d incidents, want 1", id, n)
		}
	}
	// Every run ends either succeeded (its directory exists) or
	// interrupted by the kill (exec is not idempotent, so never re-run).
	testharness.Eventually(t, 60*time.Second, "every run to finish", func() bool {
		for _, in := range incidents {
			var detail struct{ Runs []store.Run }
			getJSON(t, d2.URL+"/api/v1/incidents/"+in.ID, &detail)
			for _, r := range detail.Runs {
				if r.Active() {
					return false
				}
			}
		}
		return true
	})
	interrupted := 0
	for _, in := range incidents {
		var detail struct{ Runs []store.Run }
		getJSON(t, d2.URL+"/api/v1/incidents/"+in.ID, &detail)
		for _, r := range detail.Runs {
			s := r.Steps[0]
			switch {
			case s.Attempts > 1:
				t.Errorf("run %s: step attempted %d times", r.ID, s.Attempts)
			case r.State == store.RunInterrupted:
				interrupted++
			case r.State != store.RunSucceeded:
				t.Errorf("run %s ended %s: %s %s", r.ID, r.State, s.Error, s.Output)
			default:
				if _, err := os.Stat(filepath.Join(out, in.Labels["target"])); err != nil {
					t.Errorf("run %s succeeded but its effect is missing: %v", r.ID, err)
				}
			}
		}
	}
	t.Logf("%d incidents, %d runs interrupted by the kill", len(incidents), interrupted)
}

package app

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// Kill storm: posters, kills and the bound on steps that completed but
// were recorded interrupted.
const (
	stormRounds        = 5
	stormPosters       = 8
	stormPerPoster     = 40   // webhooks per poster per round, one alert each
	stormMaxFalseShare = 0.05 // generous; the target is 1 %
)

// TestKillStormJournalsCompletedSteps posts 320 webhooks from 8 concurrent
// posters to a drguard whose policy runs one fast exec step per alert (it
// leaves a marker file per run), and kills drguard with SIGKILL at a
// random moment while it executes them, 5 times, restarting it on the
// same journal. At the end
// every run has ended; none ran its step twice (at most one marker per
// run); and a step that completed (its marker exists) is recorded as
// succeeded, not "interrupted, a human must check", in all but a few runs
// whose step ended in the instant before a kill. It prints that figure,
// and the delay between steps ending and their outcome being durable.
func TestKillStormJournalsCompletedSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("kill storm: not in -short")
	}
	cfgFile, out, storage := daemonFiles(t, `
policies:
  - name: storm
    matchers: ['alertname="Storm"']
    steps:
      - name: mark
        action: exec
        params:
          argv: ["mktemp", "-p", %q, "ran-{{ .Labels.target }}.XXXXXX"]
`)
	delays := histogram{}
	acked := 0
	for round := range stormRounds {
		d := startDaemon(t, cfgFile, storage)
		n := storm(d, round)
		// Kill while the engine works through what was posted.
		time.Sleep(time.Duration(50+rand.IntN(750)) * time.Millisecond)
		delays.add(t, d)
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = d.cmd.Wait()
		acked += n
	}
	if acked == 0 {
		t.Fatal("no webhook was acknowledged; the test proves nothing")
	}
	d := startDaemon(t, cfgFile, storage)
	began := time.Now()
	for scrape(t, d, "drguard_remediation_runs_active") > 0 || !allRunsEnded(t, d, acked) {
		if time.Since(began) > 2*time.Minute {
			t.Fatal("the runs did not end within 2 minutes of the last restart")
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("the last daemon finished the runs left in %s", time.Since(began).Round(100*time.Millisecond))
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()

	runs, interrupted, falseAlarms := 0, 0, 0
	st, err := store.Open(storage)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.View(func(tx *store.Tx) error {
		return tx.ForEachRun(func(r store.Run) error {
			runs++
			marks := markers(t, out, r.Target)
			switch {
			case marks > 1:
				t.Errorf("run %s (%s): its step ran %d times", r.ID, r.Target, marks)
			case r.State == store.RunInterrupted:
				interrupted++
				falseAlarms += marks
			case r.State != store.RunSucceeded || marks != 1:
				t.Errorf("run %s (%s) ended %s with %d markers", r.ID, r.Target, r.State, marks)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs < acked {
		t.Errorf("%d runs for %d acknowledged alerts", runs, acked)
	}
	share := float64(falseAlarms) / float64(runs)
	t.Logf("kill storm: %d webhooks acknowledged, %d runs, %d interrupted by the %d kills, %d of them had completed: %.2f%% of runs (target ≤ 1%%)",
		acked, runs, interrupted, stormRounds, falseAlarms, 100*share)
	t.Logf("step outcome durable after the action returned: %s", delays)
	if share > stormMaxFalseShare {
		t.Errorf("%.2f%% of runs completed their step but are recorded interrupted; want at most %.0f%%", 100*share, 100*stormMaxFalseShare)
	}
}

// daemonFiles prepares a child drguard: a configuration file of
// baseConfig and policy (a format whose one verb is the directory, also
// returned, that the policy's steps leave marks in) and a storage path.
func daemonFiles(t *testing.T, policy string) (cfgFile, out, storage string) {
	t.Helper()
	dir := t.TempDir()
	out = filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgFile = filepath.Join(dir, "drguard.yaml")
	if err := os.WriteFile(cfgFile, []byte(baseConfig+fmt.Sprintf(policy, out)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgFile, out, filepath.Join(dir, "data")
}

// storm posts stormPerPoster webhooks from each of stormPosters posters
// and returns how many were answered 200.
func storm(d *daemon, round int) int {
	var mu sync.Mutex
	acked := 0
	var wg sync.WaitGroup
	for p := range stormPosters {
		wg.Go(func() {
			for i := range stormPerPoster {
				id := fmt.Sprintf("r%d-p%d-%d", round, p, i)
				body := webhook("firing", time.Now().UTC(), map[string]string{"alertname": "Storm", "target": id, "fp": id})
				code, _, err := testharness.Send(http.MethodPost, d.URL+"/api/v1/alerts", webhookToken, bytes.NewReader(body))
				if err == nil && code == http.StatusOK {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return acked
}

// markers counts the marker files of target's runs.
func markers(t *testing.T, dir, target string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "ran-"+target+".*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// allRunsEnded reports whether there are at least want incidents and every
// incident's runs have ended, from the incidents' timelines (one request
// for all of them).
func allRunsEnded(t *testing.T, d *daemon, want int) bool {
	incidents, _ := pageAll(t, d.URL, url.Values{"limit": {"1000"}})
	for _, in := range incidents {
		ended := 0
		for _, ev := range in.Timeline {
			if strings.HasPrefix(ev.Kind, "run_") && ev.Kind != "run_started" {
				ended++
			}
		}
		if ended < len(in.RunIDs) {
			return false
		}
	}
	return len(incidents) >= want
}

// histogram sums drguard_engine_step_record_delay_seconds over daemons.
type histogram map[float64]float64

const delayMetric = "drguard_engine_step_record_delay_seconds_bucket{le=\""

// add adds a daemon's cumulative bucket counts.
func (h histogram) add(t *testing.T, d *daemon) {
	code, body, err := testharness.Send(http.MethodGet, d.URL+"/metrics", "", nil)
	if err != nil || code != http.StatusOK {
		t.Logf("metrics not read before the kill: %d %v", code, err)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), delayMetric)
		if !ok {
			continue
		}
		le, count, _ := strings.Cut(rest, "\"} ")
		b, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(count, 64)
		if err1 == nil && err2 == nil {
			h[b] += n
		}
	}
}

// String gives the bucket under which half, and 99 %, of the steps fell.
func (h histogram) String() string {
	bounds := make([]float64, 0, len(h))
	for b := range h {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 || h[bounds[len(bounds)-1]] == 0 {
		return "no steps measured"
	}
	total := h[bounds[len(bounds)-1]]
	at := func(q float64) string {
		for _, b := range bounds {
			if h[b] >= q*total {
				return "≤ " + strconv.FormatFloat(b*1000, 'g', -1, 64) + " ms"
			}
		}
		return "> 2.5 s"
	}
	return fmt.Sprintf("%v steps, median %s, p99 %s", total, at(0.5), at(0.99))
}

package app

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// scrape reads one unlabelled sample from a daemon's /metrics.
func scrape(t *testing.T, d *daemon, name string) float64 {
	t.Helper()
	code, body := do(t, http.MethodGet, d.URL+"/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	return 0
}

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid: at 0 every
// write the process makes to a regular file fails with EFBIG (the Go
// runtime ignores the SIGXFSZ that comes with it), as on a full disk.
func setFileSizeLimit(t *testing.T, pid int, soft uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: min(soft, old.Max), Max: old.Max}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
}

// TestJournalFailureBacksOffAndRecovers makes every journal write of a
// running drguard fail (its file-size limit set to 0, so the disk refuses
// writes) while a step runs. The step's outcome cannot be journaled: the
// run is retried with exponential backoff (a handful of attempts in 5
// seconds, counted by drguard_engine_retries_total, instead of one every
// few milliseconds), and when writes work again the outcome is journaled,
// the run goes on to its next step, and nothing ran twice.
func TestJournalFailureBacksOffAndRecovers(t *testing.T) {
	cfgFile, out, storage := daemonFiles(t, `
policies:
  - name: fix
    matchers: ['alertname="DemoDatabaseDown"']
    steps:
      - {name: drain, action: exec, params: {argv: ["sleep", "1"]}}
      - {name: mark, action: exec, params: {argv: ["mktemp", "-p", %q, "ran-{{ .Labels.target }}.XXXXXX"]}}
`)
	d := startDaemon(t, cfgFile, storage)
	do(t, http.MethodPost, d.URL+"/api/v1/alerts", webhookToken, webhook("firing", time.Now().UTC(), dbDown("pg-1")))
	testharness.Eventually(t, 10*time.Second, "the first step to run", func() bool {
		r := daemonRuns(t, d)
		return len(r) == 1 && r[0].Steps[0].State == store.StepRunning
	})
	setFileSizeLimit(t, d.cmd.Process.Pid, 0)
	testharness.Eventually(t, 10*time.Second, "the first failed attempt to journal the step", func() bool {
		return scrape(t, d, "drguard_engine_retries_total") >= 1
	})
	before := scrape(t, d, "drguard_engine_retries_total")
	time.Sleep(5 * time.Second)
	attempts := scrape(t, d, "drguard_engine_retries_total") - before
	t.Logf("%v retries in 5 s while the journal could not be written", attempts)
	// From 50 ms doubling: at most 7 fit in 5 s, at least 3 do.
	if attempts < 3 || attempts > 8 {
		t.Errorf("%v retries in 5 s; want a handful (exponential backoff), not none and not a spin", attempts)
	}
	if r := daemonRuns(t, d); r[0].Steps[0].State != store.StepRunning {
		t.Fatalf("with a failing journal the step reads %s", r[0].Steps[0].State)
	}

	setFileSizeLimit(t, d.cmd.Process.Pid, unix.RLIM_INFINITY)
	testharness.Eventually(t, 40*time.Second, "the run to finish once the journal heals", func() bool {
		return daemonRuns(t, d)[0].State == store.RunSucceeded
	})
	r := daemonRuns(t, d)[0]
	if r.Steps[0].Attempts != 1 || r.Steps[1].Attempts != 1 || executions(t, out) != 1 {
		t.Errorf("attempts %d and %d, %d executions of the second step; want each once", r.Steps[0].Attempts, r.Steps[1].Attempts, executions(t, out))
	}
}

// daemonRuns returns the runs of every incident of a daemon.
func daemonRuns(t *testing.T, d *daemon) []store.Run {
	t.Helper()
	var list struct{ Incidents []store.Incident }
	getJSON(t, d.URL+"/api/v1/incidents", &list)
	var runs []store.Run
	for _, in := range list.Incidents {
		var detail struct{ Runs []store.Run }
		getJSON(t, d.URL+"/api/v1/incidents/"+in.ID, &detail)
		runs = append(runs, detail.Runs...)
	}
	return runs
}

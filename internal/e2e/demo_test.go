package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestMakeDemo runs scripts/demo.sh (what `make demo` runs) with CI=true,
// with this test binary as drguard: a PostgreSQL primary and streaming
// replica, the demo's S3 store and webhook receiver, drguard serving
// deploy/examples/demo.yaml, and both of its drills executed. Each drill
// must pass, with its report printed, and the script must stop everything
// it started and remove its directory.
func TestMakeDemo(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "go", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			testharness.Need(t, tool, err)
		}
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err != nil {
			testharness.Need(t, "setpriv (util-linux)", err)
		}
	}
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_basebackup"); len(dirs) == 0 && os.Getenv("DRGUARD_PG_BINDIR") == "" {
		testharness.Need(t, "PostgreSQL server binaries (apt-get install postgresql)", os.ErrNotExist)
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "drguard")
	must(t, os.WriteFile(wrapper, []byte("#!/bin/sh\n"+asDrguard+"=1 exec "+shellQuote(os.Args[0])+` "$@"`+"\n"), 0o755))
	before, _ := filepath.Glob("/tmp/drguard-demo.*")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "CI=true", "DRGUARD="+wrapper)
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/demo.sh:\n%s", out)
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v", err)
	}
	for _, want := range []string{
		"# DR drill q1-database-failure: passed",
		"# DR drill q2-region-failover: passed",
		"[x] ✓ Failover completed within RTO",
		"[x] ✓ Backup restoration successful",
		"drills: all passed",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	after, _ := filepath.Glob("/tmp/drguard-demo.*")
	if len(after) > len(before) {
		t.Errorf("the demo left its directory behind: %v (before: %v)", after, before)
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

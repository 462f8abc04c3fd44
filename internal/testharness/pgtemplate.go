package testharness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pgTemplateConf is appended to the template's postgresql.conf: fast and
// unsafe for tests, ready for streaming replication.
var pgTemplateConf = []string{
	"listen_addresses = '127.0.0.1'",
	"max_connections = 50",
	"shared_buffers = '32MB'",
	"fsync = off",
	"full_page_writes = off",
	"wal_level = replica",
	"max_wal_senders = 5",
	"max_replication_slots = 5",
	"wal_keep_size = '256MB'",
	"hot_standby = on",
	"wal_receiver_status_interval = '1s'",
	"log_line_prefix = '%m [%p] %q%u@%d '",
	"log_min_messages = warning",
}

// pgInitdbArgs are the initdb flags of the template.
var pgInitdbArgs = []string{"--auth=trust", "--no-sync", "--locale=C", "--encoding=UTF8", "--username=postgres"}

// cacheDir returns $DRGUARD_CACHE or ${XDG_CACHE_HOME:-$HOME/.cache}/drguard,
// the directory scripts/kube-apiserver.sh also uses.
func cacheDir() string {
	if d := os.Getenv("DRGUARD_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "drguard")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "drguard-cache")
	}
	return filepath.Join(home, ".cache", "drguard")
}

// pgTemplate returns a data directory made by initdb, cached on disk per
// PostgreSQL version, OS user and settings. A cold cache costs one initdb
// (about 1 s); instances copy it with cp -a (about 0.15 s). Concurrent test
// binaries may both build it: the first rename wins.
func pgTemplate(binDir string, u *osUser) (string, error) {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("postgres --version: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%s\n%s\n", out, u.uid, strings.Join(pgInitdbArgs, " "), strings.Join(pgTemplateConf, "\n"))
	final := filepath.Join(cacheDir(), "pg-template", hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(final, "PG_VERSION")); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("/tmp", "dgtpl")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o711); err != nil {
		return "", err
	}
	data := filepath.Join(tmp, "d")
	if err := os.Mkdir(data, 0o700); err != nil {
		return "", err
	}
	if err := u.chownTree(data); err != nil {
		return "", err
	}
	if out, err := runCmd(u, filepath.Join(binDir, "initdb"), append([]string{"-D", data}, pgInitdbArgs...)...); err != nil {
		return "", fmt.Errorf("initdb: %w: %s", err, out)
	}
	if err := appendLines(filepath.Join(data, "postgresql.conf"), pgTemplateConf); err != nil {
		return "", err
	}
	staging := fmt.Sprintf("%s.tmp%d", final, os.Getpid())
	if out, err := runCmd(nil, "cp", "-a", data, staging); err != nil {
		return "", fmt.Errorf("cp -a: %w: %s", err, out)
	}
	if err := os.Rename(staging, final); err != nil {
		os.RemoveAll(staging)
		if _, serr := os.Stat(filepath.Join(final, "PG_VERSION")); serr != nil {
			return "", err
		}
	}
	return final, nil
}

// runCmd runs a short command, as u when u has credentials, and returns its
// combined output.
func runCmd(u *osUser, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if u != nil {
		cmd.Env = append(cmd.Env, "HOME="+u.home)
		cmd.Dir = "/"
		cmd.SysProcAttr = procAttrAs(u)
	}
	return cmd.CombinedOutput()
}

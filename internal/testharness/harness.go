// Package testharness starts real components for tests: PostgreSQL with a
// streaming replica, Redis, an S3 protocol server, Prometheus, Alertmanager and
// a kube-apiserver with etcd.
//
// Every starter picks free ports, works in temporary directories, waits for
// readiness with a deadline, captures the component's log to a file whose tail
// is printed when the test fails, and stops everything in t.Cleanup. Child
// processes get SIGKILL from the kernel if the test binary dies (Pdeathsig).
//
// A missing binary skips the test, except under CI=true where it fails it
// (see Need). scripts/install-deps.sh installs the Debian packages and
// scripts/kube-apiserver.sh builds kube-apiserver.
//
// The only shared state is the kube-apiserver (see KubeAPIServer), started
// once per test binary and stopped by Main.
package testharness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long any component may take to become ready.
const startTimeout = 60 * time.Second

// attemptTimeout bounds one readiness check of a starting component.
const attemptTimeout = 5 * time.Second

// Need reports that the component named by what cannot be had, because of err.
// Under CI=true it fails the test with what to install; otherwise it skips it.
// Use what to say what to install, e.g. "prometheus (apt-get install prometheus)".
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("testharness: %s is required under CI but unavailable: %v (run scripts/install-deps.sh and scripts/kube-apiserver.sh)", what, err)
	}
	t.Skipf("testharness: %s unavailable, skipping: %v", what, err)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testharness: free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shortTempDir makes a directory /tmp/dgPID-N with a short path (unix socket
// paths are limited to ~107 bytes) and removes it in t.Cleanup. Directories
// left by test binaries that were killed are removed first.
func shortTempDir(t testing.TB) string {
	t.Helper()
	removeStaleTempDirs("dg")
	dir, err := os.MkdirTemp("/tmp", fmt.Sprintf("dg%d-", os.Getpid()))
	if err != nil {
		t.Fatalf("testharness: temp dir: %v", err)
	}
	t.Cleanup(func() { removeAll(t, dir) })
	return dir
}

// removeAll removes dir, first making it writable again (tests may chmod it).
func removeAll(t testing.TB, dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("testharness: remove %s: %v", dir, err)
	}
}

// findBinary returns the first of names found on PATH or as an absolute path.
func findBinary(names ...string) (string, error) {
	for _, n := range names {
		if filepath.IsAbs(n) {
			if st, err := os.Stat(n); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return n, nil
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s found", strings.Join(names, ", "))
}

// process is a child process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // set before done is closed
}

// procSpec describes a child process to start.
type procSpec struct {
	name    string
	bin     string
	args    []string
	dir     string
	env     []string
	logPath string
	cred    *syscall.Credential // run as another user when set (root only)
}

// startProcess starts spec, arranges for the kernel to kill it if the test
// binary dies, and returns at once. The log file is appended to, so a
// restarted component keeps one log.
func startProcess(spec procSpec) (*process, error) {
	logf, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), spec.bin, strings.Join(spec.args, " "))
	cmd := exec.Command(spec.bin, spec.args...)
	cmd.Dir = spec.dir
	cmd.Env = append(os.Environ(), spec.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: spec.cred}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	p := &process{name: spec.name, cmd: cmd, logPath: spec.logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// wait waits for the process to end, at most d.
func (p *process) wait(d time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s (pid %d) still running after %s", p.name, p.cmd.Process.Pid, d)
	}
}

// stop sends sig, waits up to grace, then kills the process group.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.signal(sig)
	if p.wait(grace) == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.wait(5 * time.Second)
}

// logTail returns the last n lines of a log file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dumpLogOnFailure prints the tail of a log when the test has failed.
func dumpLogOnFailure(t testing.TB, name, path string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testharness: last lines of %s log (%s):\n%s", name, path, logTail(path, 40))
		}
	})
}

// waitReady polls check until it returns nil, the process exits, or the
// deadline passes. It returns the last error.
func waitReady(ctx context.Context, p *process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		// One attempt is bounded too, so that a port that accepts and
		// never answers (someone else's) does not hide that p has exited.
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		err := check(actx)
		acancel()
		if err == nil {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited (%v) before it was ready: %w", p.name, p.err, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", startTimeout, errors.Join(err, ctx.Err()))
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// osUser is a system account that a component runs as when the tests run as root.
type osUser struct {
	name     string
	uid, gid int
	home     string
	cred     *syscall.Credential // nil when not running as root: run as ourselves
}

// lookupRunAs returns how to run a component as the named account. As root
// the component runs as that account with its supplementary groups (what
// setpriv --init-groups or runuser do); otherwise it runs as the current user.
func lookupRunAs(name string) (*osUser, error) {
	if os.Geteuid() != 0 {
		return &osUser{name: "self", uid: os.Getuid(), gid: os.Getgid(), home: os.Getenv("HOME")}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("OS user %q: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil {
				groups = append(groups, uint32(g))
			}
		}
	}
	return &osUser{name: name, uid: uid, gid: gid, home: u.HomeDir,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}, nil
}

// chownTree gives dir and everything below it to u (a no-op when not root).
func (u *osUser) chownTree(dir string) error {
	if u.cred == nil {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.uid, u.gid)
	})
}

// procAttrAs returns process attributes that run a short command as u and
// kill it if the test binary dies.
func procAttrAs(u *osUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: u.cred, Pdeathsig: syscall.SIGKILL}
}

// removeStaleTempDirs removes /tmp/PREFIXPID-* directories whose process PID
// is gone (a test binary killed before its cleanups ran).
func removeStaleTempDirs(prefix string) {
	dirs, _ := filepath.Glob("/tmp/" + prefix + "*-*")
	for _, d := range dirs {
		num, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(d), prefix), "-")
		pid, err := strconv.Atoi(num)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
				if err == nil && e.IsDir() {
					_ = os.Chmod(p, 0o755)
				}
				return nil
			})
			_ = os.RemoveAll(d)
		}
	}
}

// startWebComponent writes config to configPath, runs bin with
// --config.file and args(port) on a free port, waits until /-/ready
// answers, stops it in t.Cleanup and returns its base URL. Prometheus and
// Alertmanager start this way.
func startWebComponent(t testing.TB, name, bin, dir, configPath string, config []byte, args func(port int) []string) string {
	t.Helper()
	if err := os.WriteFile(configPath, config, 0o644); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	port := FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	logPath := filepath.Join(dir, name+".log")
	dumpLogOnFailure(t, name, logPath)
	p, err := startProcess(procSpec{name: name, bin: bin, dir: dir, logPath: logPath,
		args: append([]string{"--config.file=" + configPath}, args(port)...)})
	if err != nil {
		t.Fatalf("testharness: %v", err)
	}
	t.Cleanup(func() { p.stop(syscall.SIGTERM, 10*time.Second) })
	if err := waitReady(context.Background(), p, httpReady(url+"/-/ready")); err != nil {
		t.Fatalf("testharness: %s: %v", name, err)
	}
	return url
}

package testharness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a redis-server running as the redis OS user (when the tests
// run as root, so that directory permissions apply to it).
type RedisServer struct {
	// Addr is host:port of the server.
	Addr string
	// Dir is the server's working directory, where dump.rdb is written.
	Dir string
	// TLSAddr is host:port of the TLS listener, with RedisTLS only.
	TLSAddr string
	// CAFile is the PEM CA that signed the TLS listener's certificate
	// (for 127.0.0.1 and localhost), with RedisTLS only.
	CAFile string

	t    testing.TB
	proc *process
}

// RedisOption changes how Redis is started.
type RedisOption func(*redisOptions)

type redisOptions struct {
	conf []string
	tls  bool
}

// RedisConf adds a line to redis.conf, e.g. RedisConf("appendonly yes").
func RedisConf(line string) RedisOption {
	return func(o *redisOptions) { o.conf = append(o.conf, line) }
}

// RedisTLS adds a TLS listener (tls-port) beside the plain one, with a
// certificate from a CA of its own (RedisServer.CAFile).
func RedisTLS() RedisOption { return func(o *redisOptions) { o.tls = true } }

// Redis starts a redis-server on a free port with its data in a temporary
// directory. It is stopped in t.Cleanup. Methods fail t on errors.
func Redis(t testing.TB, opts ...RedisOption) *RedisServer {
	t.Helper()
	bin, err := findBinary("redis-server", "/usr/bin/redis-server")
	if err != nil {
		Need(t, "redis-server (apt-get install redis-server)", err)
	}
	u, err := lookupRunAs("redis")
	if err != nil {
		Need(t, "the redis OS user (apt-get install redis-server)", err)
	}
	root := shortTempDir(t)
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	dir := filepath.Join(root, "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	if err := u.chownTree(dir); err != nil {
		t.Fatalf("testharness: chown %s: %v", dir, err)
	}
	port := FreePort(t)
	conf := []string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(port),
		"protected-mode no",
		"daemonize no",
		`logfile ""`,
		"dir " + dir,
		"dbfilename dump.rdb",
		"save 3600 1 300 100 60 10000",
		"stop-writes-on-bgsave-error yes",
		"appendonly no",
	}
	var o redisOptions
	for _, opt := range opts {
		opt(&o)
	}
	conf = append(conf, o.conf...)
	r := &RedisServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, t: t}
	if o.tls {
		conf = append(conf, r.tlsConf(t, root, u)...)
	}
	confPath := filepath.Join(root, "redis.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	logPath := filepath.Join(root, "redis.log")
	dumpLogOnFailure(t, "redis", logPath)
	p, err := startProcess(procSpec{name: "redis-server", bin: bin, args: []string{confPath},
		dir: dir, logPath: logPath, cred: u.cred})
	if err != nil {
		t.Fatalf("testharness: %v", err)
	}
	t.Cleanup(func() { p.stop(syscall.SIGTERM, 10*time.Second) })
	r.proc = p
	err = waitReady(context.Background(), p, func(ctx context.Context) error {
		reply, err := r.Do(ctx, "PING")
		if err == nil && reply != "PONG" {
			err = fmt.Errorf("PING answered %v", reply)
		}
		return err
	})
	if err != nil {
		t.Fatalf("testharness: redis: %v", err)
	}
	return r
}

// Do sends one command and returns its reply: a string for simple and bulk
// strings (nil for a null bulk), int64 for integers, []any for arrays, and an
// error for a Redis error reply.
func (r *RedisServer) Do(ctx context.Context, args ...string) (any, error) {
	return RedisDo(ctx, r.Addr, args...)
}

// Info returns the fields of INFO section (e.g. "persistence").
func (r *RedisServer) Info(ctx context.Context, section string) (map[string]string, error) {
	reply, err := r.Do(ctx, "INFO", section)
	if err != nil {
		return nil, err
	}
	s, ok := reply.(string)
	if !ok {
		return nil, fmt.Errorf("INFO answered %T", reply)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			fields[k] = v
		}
	}
	return fields, nil
}

// BreakPersistence makes the data directory unwritable (chmod 555) and runs
// BGSAVE, and returns once INFO shows rdb_last_bgsave_status:err.
func (r *RedisServer) BreakPersistence() {
	r.t.Helper()
	if err := os.Chmod(r.Dir, 0o555); err != nil {
		r.t.Fatalf("testharness: %v", err)
	}
	if err := r.bgsaveUntil("err"); err != nil {
		r.t.Fatalf("testharness: break redis persistence: %v", err)
	}
}

// FixPersistence makes the data directory writable again (chmod 755), runs
// BGSAVE, and returns once INFO shows rdb_last_bgsave_status:ok.
func (r *RedisServer) FixPersistence() {
	r.t.Helper()
	if err := os.Chmod(r.Dir, 0o755); err != nil {
		r.t.Fatalf("testharness: %v", err)
	}
	if err := r.bgsaveUntil("ok"); err != nil {
		r.t.Fatalf("testharness: fix redis persistence: %v", err)
	}
}

// bgsaveUntil runs BGSAVE until it is accepted, then waits for the save to end
// with the wanted rdb_last_bgsave_status.
func (r *RedisServer) bgsaveUntil(want string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := r.Do(ctx, "BGSAVE")
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "in progress") || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		info, err := r.Info(ctx, "persistence")
		if err != nil {
			return err
		}
		if info["rdb_bgsave_in_progress"] == "0" && info["rdb_last_bgsave_status"] == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rdb_last_bgsave_status is %q, want %q", info["rdb_last_bgsave_status"], want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RedisDo sends one command to the Redis server at addr over a new connection
// and returns its reply (see RedisServer.Do).
func RedisDo(ctx context.Context, addr string, args ...string) (any, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return readRESP(bufio.NewReader(conn))
}

// readRESP reads one RESP2 reply.
func readRESP(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, fmt.Errorf("redis: %s", body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = readRESP(rd); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

// tlsConf writes a CA and a serving certificate readable by the redis user
// and returns the redis.conf lines of a TLS listener on a free port.
func (r *RedisServer) tlsConf(t testing.TB, root string, u *osUser) []string {
	t.Helper()
	dir := filepath.Join(root, "tls")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	pki, err := writeKubePKI(dir)
	if err != nil {
		t.Fatalf("testharness: redis certificates: %v", err)
	}
	r.CAFile = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(r.CAFile, pki.caPEM, 0o644); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	if err := u.chownTree(dir); err != nil {
		t.Fatalf("testharness: chown %s: %v", dir, err)
	}
	port := FreePort(t)
	r.TLSAddr = fmt.Sprintf("127.0.0.1:%d", port)
	return []string{
		"tls-port " + strconv.Itoa(port),
		"tls-cert-file " + pki.certFile,
		"tls-key-file " + pki.keyFile,
		"tls-ca-cert-file " + r.CAFile,
		"tls-auth-clients no",
	}
}

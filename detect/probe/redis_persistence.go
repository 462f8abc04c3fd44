package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// redisConfig is the params of redis_persistence.
type redisConfig struct {
	// MaxAge fails when changes have been unsaved for longer than this
	// (age of rdb_last_save_time while rdb_changes_since_last_save > 0).
	// An idle Redis with nothing to save never fails it.
	MaxAge *Duration `json:"max_age"`
	// MaxChangesSinceSave fails when more writes than this are unsaved.
	MaxChangesSinceSave *int64 `json:"max_changes_since_save"`
	// RequireAOF fails when the append-only file is disabled.
	RequireAOF bool `json:"require_aof"`
	// Username is the ACL user to AUTH as (Redis 6+); the password comes
	// from the target.
	Username string `json:"username"`
}

func redisSettings(p config.Probe) (redisConfig, error) {
	var c redisConfig
	err := decodeParams(p, &c)
	return c, err
}

func validateRedisPersistence(p config.Probe, c *config.Config) error {
	t, terr := redisTarget(c, p.Target)
	if terr == nil && t.Address == "" {
		terr = fmt.Errorf("redis target %q has no address", t.Name)
	}
	_, perr := redisSettings(p)
	return errors.Join(terr, perr)
}

// RedisPersistence reads INFO persistence over a raw RESP connection
// (AUTH first when the target has a password) and checks the last BGSAVE,
// the AOF when enabled, and how long changes have been unsaved.
func RedisPersistence(ctx context.Context, env Env, p config.Probe) detect.Result {
	c, err := redisSettings(p)
	if err != nil {
		return fail("%v", err)
	}
	t, err := redisTarget(env.Config, p.Target)
	if err != nil {
		return fail("%v", err)
	}
	info, err := redisInfo(ctx, t, c.Username, "persistence")
	if err != nil {
		env.setRedisOK(p.Target, 0)
		return fail("redis %s: %v", p.Target, err)
	}
	r := newResult()
	num := func(key string) (float64, bool) {
		v, err := strconv.ParseFloat(info[key], 64)
		return v, err == nil
	}
	for _, k := range []string{"rdb_changes_since_last_save", "rdb_bgsave_in_progress", "aof_enabled",
		"aof_rewrite_in_progress", "loading"} {
		if v, ok := num(k); ok {
			r.observe(k, v)
		}
	}
	if st := info["rdb_last_bgsave_status"]; st != "ok" {
		r.failf("last BGSAVE failed (rdb_last_bgsave_status:%s)", st)
	}
	r.observe("rdb_last_bgsave_ok", boolf(info["rdb_last_bgsave_status"] == "ok"))
	if lastSave, ok := num("rdb_last_save_time"); ok {
		r.observe("rdb_last_save_timestamp_seconds", lastSave)
		if m := env.Metrics; m != nil {
			m.RedisRDBLastSave.WithLabelValues(p.Target).Set(lastSave)
		}
		age := env.now().Sub(time.Unix(int64(lastSave), 0))
		r.observe("rdb_last_save_age_seconds", age.Seconds())
		changes, _ := num("rdb_changes_since_last_save")
		if c.MaxAge != nil && changes > 0 && age > c.MaxAge.D() {
			r.failf("%.0f change(s) unsaved since the last save %s ago, over max_age %s",
				changes, age.Round(time.Second), c.MaxAge)
		}
		if c.MaxChangesSinceSave != nil && changes > float64(*c.MaxChangesSinceSave) {
			r.failf("%.0f change(s) unsaved, over max_changes_since_save %d", changes, *c.MaxChangesSinceSave)
		}
	} else {
		r.failf("INFO persistence has no rdb_last_save_time")
	}
	aof := info["aof_enabled"] == "1"
	if aof {
		if st := info["aof_last_write_status"]; st != "ok" {
			r.failf("last AOF write failed (aof_last_write_status:%s)", st)
		}
		if st := info["aof_last_bgrewrite_status"]; st != "" && st != "ok" {
			r.failf("last AOF rewrite failed (aof_last_bgrewrite_status:%s)", st)
		}
		r.observe("aof_last_write_ok", boolf(info["aof_last_write_status"] == "ok"))
	} else if c.RequireAOF {
		r.failf("the append-only file is disabled (aof_enabled:0) and require_aof is set")
	}
	res := r.done()
	env.setRedisOK(p.Target, boolf(res.OK))
	return res
}

// setRedisOK sets drguard_redis_persistence_ok of target.
func (e Env) setRedisOK(target string, v float64) {
	if m := e.Metrics; m != nil {
		m.RedisPersistenceOK.WithLabelValues(target).Set(v)
	}
}

// maxRESPBulk bounds a bulk reply (INFO is a few KiB).
const maxRESPBulk = 1 << 20

// redisInfo connects to t, authenticates when it has a password, and
// returns the fields of INFO section. The connection lives for one call
// and carries ctx's deadline.
func redisInfo(ctx context.Context, t config.RedisTarget, username, section string) (map[string]string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	// Abandon the I/O when ctx is cancelled before its deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	rd := bufio.NewReader(conn)
	if pw := t.Password.Reveal(); pw != "" {
		args := []string{"AUTH", pw}
		if username != "" {
			args = []string{"AUTH", username, pw}
		}
		if _, err := respDo(conn, rd, args...); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	reply, err := respDo(conn, rd, "INFO", section)
	if err != nil {
		return nil, fmt.Errorf("INFO %s: %w", section, err)
	}
	s, ok := reply.(string)
	if !ok {
		return nil, fmt.Errorf("INFO %s: unexpected reply %T", section, reply)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// respError is an error reply from Redis.
type respError string

func (e respError) Error() string { return string(e) }

// respDo writes one command and reads its reply: a string for simple and
// bulk strings, int64 for integers, a respError for error replies.
func respDo(w io.Writer, rd *bufio.Reader, args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return nil, err
	}
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, respError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n > maxRESPBulk {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	default:
		return nil, fmt.Errorf("unsupported reply type %q", line[0])
	}
}

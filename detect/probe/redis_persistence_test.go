package probe

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestRedisPersistence makes BGSAVE fail (Redis as the redis user, its
// directory unwritable): a detection fires; fixing it resolves it.
func TestRedisPersistence(t *testing.T) {
	rs := testharness.Redis(t)
	cfg := &config.Config{Targets: config.Targets{Redis: []config.RedisTarget{{Name: "cache", Service: "shop", Address: rs.Addr}}}}
	env, m := testEnv(t, cfg)
	p := mkProbe("cache-persistence", "redis_persistence", "cache", 200*time.Millisecond, map[string]any{"max_age": "1h"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := rs.Do(ctx, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	r := runOnce(t, env, p)
	mustOK(t, "healthy redis", r)
	if r.Observations["rdb_changes_since_last_save"] < 1 || r.Observations["rdb_last_save_timestamp_seconds"] <= 0 {
		t.Errorf("observations %v", r.Observations)
	}
	if gauge(m.RedisPersistenceOK, "cache") != 1 || gauge(m.RedisRDBLastSave, "cache") <= 0 {
		t.Error("redis gauges not set on success")
	}

	_, rec := startScheduler(t, env, p)
	rs.BreakPersistence()
	d := rec.waitStatus(t, p.Name, detect.StatusFiring, 5*time.Second)
	if !strings.Contains(d.Evidence.Reason, "rdb_last_bgsave_status:err") {
		t.Errorf("reason %q", d.Evidence.Reason)
	}
	if gauge(m.RedisPersistenceOK, "cache") != 0 {
		t.Error("drguard_redis_persistence_ok is not 0 while BGSAVE fails")
	}
	rs.FixPersistence()
	rec.waitStatus(t, p.Name, detect.StatusResolved, 5*time.Second)
	if gauge(m.RedisPersistenceOK, "cache") != 1 {
		t.Error("drguard_redis_persistence_ok is not 1 after the fix")
	}
}

// TestRedisPersistenceChecks covers AUTH, unsaved changes older than
// max_age, and require_aof.
func TestRedisPersistenceChecks(t *testing.T) {
	const password = "correct-horse-battery"
	rs := testharness.Redis(t)
	// The harness's readiness check is an unauthenticated PING, so the
	// password is set once the server is up.
	if _, err := rs.Do(context.Background(), "CONFIG", "SET", "requirepass", password); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Targets: config.Targets{Redis: []config.RedisTarget{
		{Name: "cache", Address: rs.Addr, Password: password},
		{Name: "no-auth", Address: rs.Addr},
		{Name: "wrong-auth", Address: rs.Addr, Password: "wrong-password"},
	}}}
	env, _ := testEnv(t, cfg)
	mustOK(t, "with password", runOnce(t, env, mkProbe("a", "redis_persistence", "cache", time.Second, nil)))
	mustFail(t, "without password", runOnce(t, env, mkProbe("b", "redis_persistence", "no-auth", time.Second, nil)), "NOAUTH")
	r := runOnce(t, env, mkProbe("c", "redis_persistence", "wrong-auth", time.Second, nil))
	mustFail(t, "wrong password", r, "AUTH")
	if strings.Contains(r.Reason, "wrong-password") {
		t.Errorf("reason leaks the password: %s", r.Reason)
	}
	mustFail(t, "require_aof", runOnce(t, env, mkProbe("d", "redis_persistence", "cache", time.Second,
		map[string]any{"require_aof": true})), "aof_enabled:0")

	// An unsaved change ages against a clock two hours ahead.
	later := env
	later.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := redisSet(rs.Addr, password); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "stale unsaved changes", runOnce(t, later, mkProbe("e", "redis_persistence", "cache", time.Second,
		map[string]any{"max_age": "1h"})), "unsaved since the last save")
}

// redisSet writes a key over a connection authenticated with password
// (testharness.RedisDo sends one command per connection, so no AUTH).
func redisSet(addr, password string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	rd := bufio.NewReader(conn)
	if _, err := respDo(conn, rd, "AUTH", password); err != nil {
		return err
	}
	_, err = respDo(conn, rd, "SET", "k", "v")
	return err
}

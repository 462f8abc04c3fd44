package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/redis/go-redis/v9"

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
	mustFail(t, "wrong password", r, "WRONGPASS")
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

// redisSet writes a key over a connection authenticated with password.
func redisSet(addr, password string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Set(ctx, "k", "v", 0).Err()
}

// TestRedisPersistenceTLS reads INFO from a real Redis over TLS, trusting
// the target's ca_file, and refuses a server whose certificate it cannot
// verify.
func TestRedisPersistenceTLS(t *testing.T) {
	rs := testharness.Redis(t, testharness.RedisTLS())
	cfg := &config.Config{Targets: config.Targets{Redis: []config.RedisTarget{
		{Name: "tls", Address: rs.TLSAddr, TLS: &promconfig.TLSConfig{CAFile: rs.CAFile}},
		{Name: "untrusted", Address: rs.TLSAddr, TLS: &promconfig.TLSConfig{}},
		{Name: "plain-to-tls", Address: rs.TLSAddr},
	}}}
	env, _ := testEnv(t, cfg)
	r := runOnce(t, env, mkProbe("a", "redis_persistence", "tls", time.Second, nil))
	mustOK(t, "over TLS", r)
	if r.Observations["rdb_last_save_timestamp_seconds"] <= 0 {
		t.Errorf("observations %v", r.Observations)
	}
	mustFail(t, "untrusted certificate", runOnce(t, env, mkProbe("b", "redis_persistence", "untrusted", time.Second, nil)), "certificate")
	mustFail(t, "plain text to a TLS port", runOnce(t, env, mkProbe("c", "redis_persistence", "plain-to-tls", time.Second, nil)), "redis plain-to-tls")
}

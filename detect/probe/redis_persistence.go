package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// redisParams is the params of redis_persistence.
type redisParams struct {
	// MaxAge fails when changes have been unsaved for longer than this
	// (age of rdb_last_save_time while rdb_changes_since_last_save > 0).
	// An idle Redis with nothing to save never fails it.
	MaxAge *model.Duration `param:"max_age"`
	// MaxChangesSinceSave fails when more writes than this are unsaved.
	MaxChangesSinceSave *int64 `param:"max_changes_since_save"`
	// RequireAOF fails when the append-only file is disabled.
	RequireAOF bool `param:"require_aof"`
	// Username is the ACL user to AUTH as (Redis 6+); the password comes
	// from the target.
	Username string `param:"username"`
}

// redisTargetConn is a redis target as a compiled probe holds it.
type redisTargetConn struct {
	target config.RedisTarget
	tls    *tls.Config
}

func compileRedisPersistence(p config.Probe, cfg *config.Config) (Runner, error) {
	return compileKind(p, cfg, &redisParams{}, compileRedis, redisPersistence)
}

// compileRedis resolves a redis probe's target and builds its TLS
// configuration once, when the probe is compiled.
func compileRedis(c *config.Config, name string) (redisTargetConn, error) {
	t, err := redisTarget(c, name)
	if err != nil || t.TLS == nil {
		return redisTargetConn{target: t}, err
	}
	tc, err := promconfig.NewTLSConfig(t.TLS)
	if err != nil {
		return redisTargetConn{}, fmt.Errorf("redis target %q: tls: %w", t.Name, err)
	}
	return redisTargetConn{target: t, tls: tc}, nil
}

// redisPersistence reads INFO persistence with go-redis (over TLS when
// the target says so, authenticated when it has a password) and checks
// the last BGSAVE, the AOF when enabled, and how long changes have been
// unsaved.
func redisPersistence(ctx context.Context, env Env, rt redisTargetConn, c *redisParams) detect.Result {
	name := rt.target.Name
	info, err := env.redisInfo(ctx, rt, c.Username, "persistence")
	if err != nil {
		env.setRedisOK(name, 0)
		return fail("redis %s: %v", name, err)
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
			m.RedisRDBLastSave.WithLabelValues(name).Set(lastSave)
		}
		age := env.now().Sub(time.Unix(int64(lastSave), 0))
		r.observe("rdb_last_save_age_seconds", age.Seconds())
		changes, _ := num("rdb_changes_since_last_save")
		if c.MaxAge != nil && changes > 0 && age > time.Duration(*c.MaxAge) {
			r.failf("%.0f change(s) unsaved since the last save %s ago, over max_age %s",
				changes, age.Round(time.Second), *c.MaxAge)
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
	env.setRedisOK(name, boolf(res.OK))
	return res
}

// setRedisOK sets drguard_redis_persistence_ok of target.
func (e Env) setRedisOK(target string, v float64) {
	if m := e.Metrics; m != nil {
		m.RedisPersistenceOK.WithLabelValues(target).Set(v)
	}
}

// redisInfo returns the fields of INFO section from the target's cached
// client. The call carries ctx's deadline; a failed call is not retried.
func (e Env) redisInfo(ctx context.Context, rt redisTargetConn, username, section string) (map[string]string, error) {
	key := rt.target.Name + "\x00" + username
	client, err := cached(e, func(s *shared) map[string]*redis.Client { return s.redis }, key, func() (*redis.Client, error) {
		return redis.NewClient(&redis.Options{
			Addr: rt.target.Address, Username: username, Password: rt.target.Password.Reveal(),
			TLSConfig: rt.tls, ContextTimeoutEnabled: true, MaxRetries: -1,
			PoolSize: 2, DialerRetries: 1, DisableIdentity: true, Protocol: 2,
		}), nil
	})
	if err != nil {
		return nil, err
	}
	s, err := client.Info(ctx, section).Result()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("INFO %s: timed out", section)
		}
		return nil, fmt.Errorf("INFO %s: %w", section, err)
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

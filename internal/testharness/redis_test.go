package testharness

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRedis(t *testing.T) {
	start := time.Now()
	r := Redis(t)
	t.Logf("redis ready in %s", time.Since(start))
	ctx := context.Background()
	if _, err := r.Do(ctx, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Do(ctx, "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k = %v, %v", got, err)
	}

	r.BreakPersistence()
	info, err := r.Info(ctx, "persistence")
	if err != nil {
		t.Fatal(err)
	}
	if got := info["rdb_last_bgsave_status"]; got != "err" {
		t.Fatalf("rdb_last_bgsave_status = %q after BreakPersistence", got)
	}
	if _, err := r.Do(ctx, "SET", "k", "w"); err == nil || !strings.Contains(err.Error(), "MISCONF") {
		t.Fatalf("write with broken persistence: %v, want MISCONF", err)
	}

	r.FixPersistence()
	info, err = r.Info(ctx, "persistence")
	if err != nil {
		t.Fatal(err)
	}
	if got := info["rdb_last_bgsave_status"]; got != "ok" {
		t.Fatalf("rdb_last_bgsave_status = %q after FixPersistence", got)
	}
	if _, err := r.Do(ctx, "SET", "k", "w"); err != nil {
		t.Fatalf("write after FixPersistence: %v", err)
	}
}

package probe

// This file holds what probe kinds share to check their configuration:
// table names and the lookup of a probe's target by name and kind.

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// identRE matches a plain SQL identifier.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// checkTableName accepts "table" or "schema.table" made of plain
// identifiers; the name is still quoted when used.
// key names the param in errors.
func checkTableName(key, name string) error {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return params.Errorf(key, "table %q: want table or schema.table", name)
	}
	for _, part := range parts {
		if !identRE.MatchString(part) {
			return params.Errorf(key, "table %q: %q is not a plain identifier", name, part)
		}
	}
	return nil
}

// The lookups below find a probe's target by name and kind.

func postgresTarget(c *config.Config, name string) (config.PostgresTarget, error) {
	return findTarget(c, "postgres", name, targetsOf(c).Postgres, func(t config.PostgresTarget) string { return t.Name })
}

func redisTarget(c *config.Config, name string) (config.RedisTarget, error) {
	return findTarget(c, "redis", name, targetsOf(c).Redis, func(t config.RedisTarget) string { return t.Name })
}

func httpTarget(c *config.Config, name string) (config.HTTPTarget, error) {
	return findTarget(c, "http", name, targetsOf(c).HTTP, func(t config.HTTPTarget) string { return t.Name })
}

func s3Target(c *config.Config, name string) (config.S3Target, error) {
	return findTarget(c, "s3", name, targetsOf(c).S3, func(t config.S3Target) string { return t.Name })
}

func kubernetesTarget(c *config.Config, name string) (config.KubernetesTarget, error) {
	return findTarget(c, "kubernetes", name, targetsOf(c).Kubernetes, func(t config.KubernetesTarget) string { return t.Name })
}

// findTarget returns the target called name among targets, those of one
// kind, or an error that says what the name is instead.
func findTarget[T any](c *config.Config, kind, name string, targets []T, nameOf func(T) string) (T, error) {
	for _, t := range targets {
		if nameOf(t) == name {
			return t, nil
		}
	}
	var none T
	return none, noTarget(c, kind, name)
}

// targetsOf returns c's targets, or none when c is nil.
func targetsOf(c *config.Config) config.Targets {
	if c == nil {
		return config.Targets{}
	}
	return c.Targets
}

func noTarget(c *config.Config, kind, name string) error {
	if name == "" {
		return fmt.Errorf("no target: want the name of a %s target", kind)
	}
	if c == nil {
		return fmt.Errorf("undefined %s target %q", kind, name)
	}
	if kinds := c.Targets.Kinds(name); len(kinds) > 0 {
		return fmt.Errorf("target %q is a %s target, want a %s target", name, strings.Join(kinds, "/"), kind)
	}
	return fmt.Errorf("undefined %s target %q", kind, name)
}

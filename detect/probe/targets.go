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
	for _, t := range targetsOf(c).Postgres {
		if t.Name == name {
			return t, nil
		}
	}
	return config.PostgresTarget{}, noTarget(c, "postgres", name)
}

func redisTarget(c *config.Config, name string) (config.RedisTarget, error) {
	for _, t := range targetsOf(c).Redis {
		if t.Name == name {
			return t, nil
		}
	}
	return config.RedisTarget{}, noTarget(c, "redis", name)
}

func httpTarget(c *config.Config, name string) (config.HTTPTarget, error) {
	for _, t := range targetsOf(c).HTTP {
		if t.Name == name {
			return t, nil
		}
	}
	return config.HTTPTarget{}, noTarget(c, "http", name)
}

func s3Target(c *config.Config, name string) (config.S3Target, error) {
	for _, t := range targetsOf(c).S3 {
		if t.Name == name {
			return t, nil
		}
	}
	return config.S3Target{}, noTarget(c, "s3", name)
}

func kubernetesTarget(c *config.Config, name string) (config.KubernetesTarget, error) {
	for _, t := range targetsOf(c).Kubernetes {
		if t.Name == name {
			return t, nil
		}
	}
	return config.KubernetesTarget{}, noTarget(c, "kubernetes", name)
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

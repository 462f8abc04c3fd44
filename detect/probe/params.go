package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/prometheus/common/model"
)

// decodeParams decodes a probe's params into the kind's typed struct,
// strictly: an unknown key or a value of the wrong type is an error. Params
// arrive as YAML decoded them (map[string]any with ints, strings, []any and
// nested maps), so a JSON round trip gives exact, typed decoding.
func decodeParams(p config.Probe, into any) error {
	if len(p.Params) == 0 {
		return nil
	}
	raw, err := json.Marshal(p.Params)
	if err != nil {
		return fmt.Errorf("params: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("params: %s", cleanJSONError(err))
	}
	return nil
}

// cleanJSONError rewrites encoding/json's messages in the words of a YAML
// file: "unknown key" rather than "unknown field", no Go type names.
func cleanJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("%s: want %s, got %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown key " + rest
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "slice":
		return "a list"
	case "map", "struct":
		return "a mapping"
	default:
		return "a " + goKind
	}
}

// Duration is a duration param: a string such as "90s", "15m" or "1d", or a
// number of seconds.
type Duration time.Duration

// UnmarshalJSON accepts a Prometheus-style duration string or a number of
// seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		md, err := model.ParseDuration(s)
		if err != nil {
			// Also accept Go's form with fractions, e.g. "1.5s".
			gd, gerr := time.ParseDuration(s)
			if gerr != nil {
				return fmt.Errorf("not a duration: %q", s)
			}
			md = model.Duration(gd)
		}
		*d = Duration(md)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 {
		return fmt.Errorf("want a duration such as \"30s\" or a number of seconds, got %s", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration the way the configuration writes it.
func (d Duration) String() string { return model.Duration(d).String() }

// identRE matches a plain SQL identifier.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// checkTableName accepts "table" or "schema.table" made of plain
// identifiers; the name is still quoted when used.
func checkTableName(name string) error {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return fmt.Errorf("table %q: want table or schema.table", name)
	}
	for _, part := range parts {
		if !identRE.MatchString(part) {
			return fmt.Errorf("table %q: %q is not a plain identifier", name, part)
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

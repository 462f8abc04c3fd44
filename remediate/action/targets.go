package action

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// pickTarget chooses the configured target of one kind that a step acts
// on: the step's `target` param when set; else the run's target when it
// names a target of this kind; else the only target of this kind. names
// lists the configured targets' names in file order.
func pickTarget(kind string, names []string, param, runTarget string) (int, error) {
	find := func(n string) int {
		for i, x := range names {
			if x == n {
				return i
			}
		}
		return -1
	}
	if param != "" {
		if i := find(param); i >= 0 {
			return i, nil
		}
		return -1, fmt.Errorf("no %s target named %q in the configuration (known: %s)", kind, param, listOrNone(names))
	}
	if i := find(runTarget); runTarget != "" && i >= 0 {
		return i, nil
	}
	switch len(names) {
	case 0:
		return -1, fmt.Errorf("no %s target is configured: add one under targets.%s", kind, kind)
	case 1:
		return 0, nil
	}
	return -1, fmt.Errorf("several %s targets are configured (%s): set param \"target\"", kind, strings.Join(names, ", "))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// boolParam returns params[key] as a bool; a missing key yields def. A
// rendered "true" or "false" string is accepted. When unrendered is true a
// template string is accepted unchecked.
func boolParam(params map[string]any, key string, def, unrendered bool) (bool, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return def, nil
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		if unrendered && isTemplate(b) {
			return def, nil
		}
		switch strings.ToLower(strings.TrimSpace(b)) {
		case "true", "yes":
			return true, nil
		case "false", "no":
			return false, nil
		}
	}
	return false, fmt.Errorf("param %q: want true or false, got %v", key, v)
}

// durationParam returns params[key] as a duration written the way the
// configuration writes them (30s, 5m, 1h, 1d); a missing key yields def.
// When unrendered is true a template string is accepted unchecked.
func durationParam(params map[string]any, key string, def time.Duration, unrendered bool) (time.Duration, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("param %q: want a duration such as 5m, got %T", key, v)
	}
	if unrendered && isTemplate(s) {
		return def, nil
	}
	d, err := model.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("param %q: %q is not a duration such as 30s, 5m or 1h", key, s)
	}
	return time.Duration(d), nil
}

// timeParam returns params[key] parsed as an RFC 3339 time; a missing or
// empty key yields the zero time. When unrendered is true a template
// string is accepted unchecked.
func timeParam(params map[string]any, key string, unrendered bool) (time.Time, error) {
	s, err := stringParam(params, key, "")
	if err != nil || s == "" || (unrendered && isTemplate(s)) {
		return time.Time{}, err
	}
	t, err := parseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("param %q: %w", key, err)
	}
	return t, nil
}

// parseTime parses an RFC 3339 time, or the form Go's time.Time prints
// in templates ({{ .Incident.StartsAt }}).
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999 -0700 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2025-11-20T00:00:00Z", s)
}

// requireString returns a required string param, rejecting empty values
// (a template counts as present until it is rendered).
func requireString(params map[string]any, key string) (string, error) {
	s, err := stringParam(params, key, "")
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("param %q is required", key)
	}
	return s, nil
}

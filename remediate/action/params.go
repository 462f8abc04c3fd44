package action

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Params arrive in two shapes: as decoded from YAML at config load
// (unrendered, e.g. []any, map[string]any, int) and as rendered by the
// engine and read back from the journal (strings, []any, map[string]any,
// float64). The helpers below accept both.

// isTemplate reports whether s still holds template actions, so that a
// check on its final value must wait until it is rendered.
func isTemplate(s string) bool { return strings.Contains(s, "{{") }

// stringParam returns params[key] as a string. A missing key yields def.
func stringParam(params map[string]any, key, def string) (string, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("param %q: want a string, got %T", key, v)
	}
	return s, nil
}

// stringListParam returns params[key] as a list of strings. A missing key
// yields nil.
func stringListParam(params map[string]any, key string) ([]string, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch l := v.(type) {
	case []string:
		return append([]string(nil), l...), nil
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("param %q: element %d: want a string, got %T", key, i, e)
			}
			out[i] = s
		}
		return out, nil
	default:
		return nil, fmt.Errorf("param %q: want a list of strings, got %T", key, v)
	}
}

// stringMapParam returns params[key] as a map of strings. A missing key
// yields nil.
func stringMapParam(params map[string]any, key string) (map[string]string, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch m := v.(type) {
	case map[string]string:
		out := make(map[string]string, len(m))
		for k, s := range m {
			out[k] = s
		}
		return out, nil
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, e := range m {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("param %q: key %q: want a string, got %T", key, k, e)
			}
			out[k] = s
		}
		return out, nil
	default:
		return nil, fmt.Errorf("param %q: want a map of strings, got %T", key, v)
	}
}

// toInt converts a YAML or JSON number, or a rendered numeric string, to an
// int.
func toInt(v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case uint64:
		if n > math.MaxInt32 {
			return 0, fmt.Errorf("%d is too large", n)
		}
		return int(n), nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			return 0, fmt.Errorf("%v is not a whole number", n)
		}
		return int(n), nil
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", n)
		}
		return i, nil
	default:
		return 0, fmt.Errorf("want a number, got %T", v)
	}
}

// intParam returns params[key] as an int; a missing key yields def. When
// unrendered is true a template string is accepted unchecked.
func intParam(params map[string]any, key string, def int, unrendered bool) (int, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return def, nil
	}
	if s, isStr := v.(string); isStr && unrendered && isTemplate(s) {
		return def, nil
	}
	n, err := toInt(v)
	if err != nil {
		return 0, fmt.Errorf("param %q: %w", key, err)
	}
	return n, nil
}

// intListParam returns params[key] as a list of ints. A missing key yields
// nil. When unrendered is true template strings are accepted unchecked.
func intListParam(params map[string]any, key string, unrendered bool) ([]int, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return nil, nil
	}
	var elems []any
	switch l := v.(type) {
	case []any:
		elems = l
	case []int:
		return append([]int(nil), l...), nil
	default:
		elems = []any{v}
	}
	out := make([]int, 0, len(elems))
	for i, e := range elems {
		if s, isStr := e.(string); isStr && unrendered && isTemplate(s) {
			continue
		}
		n, err := toInt(e)
		if err != nil {
			return nil, fmt.Errorf("param %q: element %d: %w", key, i, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// checkKnown rejects params an action does not understand, so a typo such
// as `argvs` is caught by `drguard check`.
func checkKnown(params map[string]any, known ...string) error {
	for k := range params {
		found := false
		for _, n := range known {
			if k == n {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("unknown param %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

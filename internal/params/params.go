// Package params decodes the params of probes and remediation steps into
// typed structs, strictly and once: an unknown key, a value of the wrong
// type, a bad duration or a bad regular expression is an error that names
// its key, so that the configuration loader can point at its file and
// line. Probes decode their params when the configuration loads and run
// many times from the result; actions decode a step's unrendered params at
// load (values that are still templates are accepted unchecked) and the
// rendered params, as journaled, into the same struct when the step runs.
//
// Decoding is github.com/go-viper/mapstructure/v2 with hooks for durations
// (Prometheus syntax into model.Duration, or a number of seconds), numbers and booleans written as
// strings (what a rendered template yields) and whole numbers read back
// from JSON as float64. Fields name their key with a `param:"name"` tag.
package params

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/prometheus/common/model"
)

// TagName is the struct tag that names a field's key.
const TagName = "param"

// Templates lists the keys (paths such as "replicas" or "argv[1]") whose
// values were still templates when the params were decoded.
type Templates map[string]bool

// Literal reports whether key's value was written as it is, not as a
// template, so that a check of its value applies.
func (t Templates) Literal(key string) bool { return !t[key] }

// Index returns the key of element i of the list at key: "argv[1]".
func Index(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

// IsTemplate reports whether s still holds template actions.
func IsTemplate(s string) bool { return strings.Contains(s, "{{") }

// Decode decodes rendered (or literal) params into out, a pointer to a
// struct: every value is checked. A nil map decodes nothing.
func Decode(raw map[string]any, out any) error {
	_, err := decode(raw, out, false)
	return err
}

// DecodeTemplated decodes a step's unrendered params into out. A string
// holding template actions is kept as it is in a string field and left
// unset in any other; either way its key is listed in the returned
// Templates, so that checks of literal values can skip it.
func DecodeTemplated(raw map[string]any, out any) (Templates, error) {
	return decode(raw, out, true)
}

func decode(raw map[string]any, out any, templated bool) (Templates, error) {
	tpl := Templates{}
	if templated {
		findTemplates(raw, "", tpl)
	}
	if len(raw) == 0 {
		return tpl, nil
	}
	var meta mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: func(from, to reflect.Type, data any) (any, error) {
			// A template in a field that is not a string stays unset
			// (and unchecked) until it is rendered.
			if s, ok := data.(string); ok && templated && IsTemplate(s) && to.Kind() != reflect.String {
				return nil, nil
			}
			if to == durationType {
				return durationHook(data)
			}
			return scalarHook(to, data)
		},
		// Unknown keys are read from Metadata.Unused rather than
		// reported by ErrorUnused, so that each carries its full path
		// (and so its line in the file), not only its parent's.
		Metadata: &meta,
		Squash:   true,
		TagName:  TagName,
		Result:   out,
	})
	if err != nil {
		return nil, err
	}
	var errs []error
	if err := dec.Decode(raw); err != nil {
		errs = append(errs, keyErrors(err)...)
	}
	sort.Strings(meta.Unused)
	for _, k := range meta.Unused {
		errs = append(errs, unknownKey(k, out))
	}
	return tpl, errors.Join(errs...)
}

// findTemplates records the path of every string under v that is a
// template.
func findTemplates(v any, path string, tpl Templates) {
	switch x := v.(type) {
	case string:
		if IsTemplate(x) {
			tpl[path] = true
		}
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			findTemplates(e, p, tpl)
		}
	case []any:
		for i, e := range x {
			findTemplates(e, Index(path, i), tpl)
		}
	}
}

var durationType = reflect.TypeFor[model.Duration]()

// durationHook parses a Prometheus duration ("30s", "5m", "1d"), or takes
// a number as seconds.
func durationHook(data any) (any, error) {
	switch x := data.(type) {
	case string:
		d, err := model.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration such as 30s, 5m or 1h", x)
		}
		return d, nil
	case int, int64, uint64, float64:
		secs := reflect.ValueOf(x).Convert(reflect.TypeFor[float64]()).Float()
		if secs < 0 || math.IsInf(secs, 0) || math.IsNaN(secs) {
			return nil, fmt.Errorf("%v is not a duration", x)
		}
		return model.Duration(secs * float64(time.Second)), nil
	}
	return nil, fmt.Errorf("want a duration such as 30s, 5m or 1h, got %s", kindOf(data))
}

// scalarHook converts what templates and JSON yield into numbers and
// booleans: "3" and 3.0 into an int, "true" and "yes" into a bool.
// Anything else passes to the strict decoder unchanged.
func scalarHook(to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		switch x := data.(type) {
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a whole number", x)
			}
			return n, nil
		case float64:
			if x != math.Trunc(x) || math.Abs(x) > math.MaxInt64/2 {
				return nil, fmt.Errorf("%v is not a whole number", x)
			}
			return int64(x), nil
		}
	case reflect.Float32, reflect.Float64:
		if s, ok := data.(string); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", s)
			}
			return f, nil
		}
	case reflect.Slice:
		switch data.(type) {
		case string, bool, int, int64, uint64, float64, map[string]any:
			return nil, fmt.Errorf("want %s, got %s", listName(to), kindOf(data))
		}
	case reflect.Bool:
		if s, ok := data.(string); ok {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true", "yes":
				return true, nil
			case "false", "no":
				return false, nil
			}
			return nil, fmt.Errorf("%q is not true or false", s)
		}
	}
	return data, nil
}

// Regexp is a regular expression param, compiled when the params decode.
type Regexp struct {
	*regexp.Regexp
}

// UnmarshalMapstructure compiles a string.
func (r *Regexp) UnmarshalMapstructure(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("want a regular expression, got %s", kindOf(v))
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return fmt.Errorf("invalid regular expression: %w", err)
	}
	r.Regexp = re
	return nil
}

// listName describes a list type: "a list of strings".
func listName(t reflect.Type) string {
	switch t.Elem().Kind() {
	case reflect.String:
		return "a list of strings"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a list of whole numbers"
	}
	return "a list"
}

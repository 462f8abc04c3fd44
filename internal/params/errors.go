package params

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// KeyError is a problem with the value at one key of a params map. Key is
// a path ("checks[0].name"), or "" for the params as a whole.
type KeyError struct {
	Key string
	Err error
}

// Error names the key, then the problem.
func (e *KeyError) Error() string {
	if e.Key == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("param %q: %v", e.Key, e.Err)
}

// Unwrap returns the problem.
func (e *KeyError) Unwrap() error { return e.Err }

// Errorf returns a *KeyError for key.
func Errorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Required returns the error of a required key that is missing.
func Required(key, what string) error {
	if what == "" {
		return Errorf(key, "is required")
	}
	return Errorf(key, "is required: %s", what)
}

// KeyErrors flattens err (joined errors included) into its problems, each
// with the key it is about; an error that names no key gets Key "".
func KeyErrors(err error) []*KeyError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*KeyError
		for _, e := range j.Unwrap() {
			out = append(out, KeyErrors(e)...)
		}
		return out
	}
	var ke *KeyError
	if errors.As(err, &ke) {
		return []*KeyError{ke}
	}
	return []*KeyError{{Err: err}}
}

// keyErrors turns mapstructure's errors into KeyErrors with messages in
// the words of a YAML file rather than of Go types.
func keyErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, keyErrors(e)...)
		}
		return out
	}
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) {
		return []error{&KeyError{Err: err}}
	}
	cause := de.Unwrap()
	var ute *mapstructure.UnconvertibleTypeError
	var pe *mapstructure.ParseError
	switch {
	case errors.As(cause, &ute):
		cause = fmt.Errorf("want %s, got %s", TypeName(ute.Expected.Type()), kindOf(ute.Value))
	case errors.As(cause, &pe):
		cause = fmt.Errorf("want %s, got %s", TypeName(pe.Expected.Type()), kindOf(pe.Value))
	}
	return []error{&KeyError{Key: keyPath(de.Name()), Err: cause}}
}

// mapKeyRE matches mapstructure's name of a map entry, "env[NAME]".
var mapKeyRE = regexp.MustCompile(`\[([^\]]*[^0-9\]][^\]]*)\]`)

// keyPath writes mapstructure's path of a value the way the configuration
// loader does: a map entry as "env.NAME", a list element as "argv[1]".
func keyPath(name string) string { return mapKeyRE.ReplaceAllString(name, ".$1") }

// unknownKey reports a key that no field takes, suggesting the nearest
// top-level key.
func unknownKey(key string, out any) error {
	msg := "unknown key"
	if !strings.ContainsAny(key, ".[") {
		known := Keys(out)
		if s := Closest(key, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else if len(known) > 0 {
			msg += " (known: " + strings.Join(known, ", ") + ")"
		}
	}
	return &KeyError{Key: key, Err: errors.New(msg)}
}

// Keys returns the top-level keys a params struct takes, sorted.
func Keys(out any) []string {
	t := reflect.TypeOf(out)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get(TagName), ",")
			switch {
			case f.Anonymous && f.Type.Kind() == reflect.Struct && name == "":
				walk(f.Type)
			case name != "" && name != "-":
				keys = append(keys, name)
			}
		}
	}
	walk(t)
	sort.Strings(keys)
	return keys
}

// Closest returns the candidate nearest to s by edit distance, when it is
// near enough to be a likely typo ("" otherwise): the did-you-mean of
// unknown keys, here and in the configuration loader.
func Closest(s string, candidates []string) string {
	best, bestDist := "", len(s)/3+1
	for _, c := range candidates {
		if d := editDistance(s, c); d <= bestDist && (best == "" || d < editDistance(s, best)) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// TypeName describes a Go type in the words of a YAML file ("a whole
// number", "a list"): the wording of type errors here and in the
// configuration loader.
func TypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// kindOf describes a decoded YAML or JSON value without echoing it (it
// may be a credential written in the wrong place).
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "true or false"
	case int, int64, uint64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

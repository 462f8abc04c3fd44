package params

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

type inner struct {
	Name string `param:"name"`
}

type common struct {
	Target string `param:"target"`
}

type sample struct {
	common
	Count    int               `param:"count"`
	Ratio    float64           `param:"ratio"`
	On       bool              `param:"on"`
	Every    model.Duration    `param:"every"`
	Max      *int64            `param:"max"`
	Pattern  Regexp            `param:"pattern"`
	Argv     []string          `param:"argv"`
	Codes    []int             `param:"codes"`
	Env      map[string]string `param:"env"`
	Children []inner           `param:"children"`
}

// TestDecode reads like the spec of strict params decoding: what each
// shape of value becomes, and which key each problem names.
func TestDecode(t *testing.T) {
	cases := []struct {
		name string
		raw  map[string]any
		key  string // "" with err "": no error
		err  string
	}{
		{"yaml literals", map[string]any{"count": 3, "ratio": 0.5, "on": true, "every": "90s", "max": 7,
			"pattern": "^ok$", "argv": []any{"a", "b"}, "codes": []any{200}, "env": map[string]any{"A": "1"},
			"children": []any{map[string]any{"name": "x"}}, "target": "db"}, "", ""},
		{"rendered strings", map[string]any{"count": "3", "on": "yes", "ratio": "0.25"}, "", ""},
		{"json whole numbers", map[string]any{"count": 3.0, "codes": []any{200.0}}, "", ""},
		{"unknown key", map[string]any{"cuont": 1}, "cuont", `unknown key (did you mean "count"?)`},
		{"unknown nested key", map[string]any{"children": []any{map[string]any{"nmae": "x"}}}, "children[0].nmae", "unknown key"},
		{"bad duration", map[string]any{"every": "soon"}, "every", `"soon" is not a duration`},
		{"duration as seconds", map[string]any{"every": 30}, "", ""},
		{"duration as a list", map[string]any{"every": []any{"30s"}}, "every", "want a duration"},
		{"bad regexp", map[string]any{"pattern": "("}, "pattern", "invalid regular expression"},
		{"fraction for int", map[string]any{"count": 1.5}, "count", "not a whole number"},
		{"word for int", map[string]any{"count": "lots"}, "count", `"lots" is not a whole number`},
		{"list for string", map[string]any{"target": []any{"a"}}, "target", "want a string, got a list"},
		{"word for bool", map[string]any{"on": "maybe"}, "on", "not true or false"},
		{"number in string list", map[string]any{"argv": []any{"a", 1}}, "argv[1]", "want a string, got a number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s sample
			err := Decode(tc.raw, &s)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			kes := KeyErrors(err)
			if len(kes) != 1 || kes[0].Key != tc.key || !strings.Contains(kes[0].Err.Error(), tc.err) {
				t.Fatalf("errors %v, want one at key %q containing %q", err, tc.key, tc.err)
			}
		})
	}
}

// TestDecodeValues checks what the decoded struct holds.
func TestDecodeValues(t *testing.T) {
	var s sample
	err := Decode(map[string]any{"count": "4", "every": "1d", "pattern": "re+dy", "target": "db", "max": 9}, &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != 4 || time.Duration(s.Every) != 24*time.Hour || !s.Pattern.MatchString("reeedy") || s.Target != "db" || *s.Max != 9 {
		t.Fatalf("decoded %+v", s)
	}
}

// TestDecodeTemplated checks that template values pass unchecked and are
// listed, while literal values are still checked.
func TestDecodeTemplated(t *testing.T) {
	var s sample
	tpl, err := DecodeTemplated(map[string]any{
		"count": "{{ .Labels.n }}", "target": "{{ .Target }}", "codes": []any{200, "{{ .Labels.code }}"},
		"on": "{{ .Labels.on }}", "every": "{{ .Labels.every }}",
	}, &s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"count", "target", "codes[1]", "on", "every"} {
		if tpl.Literal(k) {
			t.Errorf("%s not listed as a template", k)
		}
	}
	if !tpl.Literal("codes[0]") || s.Target != "{{ .Target }}" || s.Count != 0 {
		t.Errorf("templates %v, decoded %+v", tpl, s)
	}
	if _, err := DecodeTemplated(map[string]any{"count": "{{ .X }}", "every": "soon"}, &s); err == nil {
		t.Error("a literal bad duration beside a template was accepted")
	}
}

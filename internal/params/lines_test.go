package params

import "testing"

func TestLines(t *testing.T) {
	cases := []struct {
		in   map[string]any
		want string
	}{
		{nil, "(none)"},
		{map[string]any{"b": "x y", "a": 3.0, "c": []any{"echo", "hi"}, "d": map[string]any{"k": true}},
			"a: 3\nb: x y\nc: [\"echo\",\"hi\"]\nd: {\"k\":true}"},
	}
	for _, c := range cases {
		if got := Lines(c.in); got != c.want {
			t.Errorf("Lines(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

package config

import (
	"strings"
	"testing"
)

func TestConcatenatedJSON(t *testing.T) {
	tests := []struct {
		body string
		want string // the first action reported; "" = none
	}{
		{`{"t":"{{ .Labels.target }}"}`, ".Labels.target"},
		{`{"t":"{{- .Labels.target -}}"}`, ".Labels.target"},
		{`[{"s":"x {{ .Annotations.summary }}"}]`, ".Annotations.summary"},
		{`{"n": {{ .Labels.count }}}`, ".Labels.count"},
		{`{"t":"{{ json .Labels.target }}"}`, "json .Labels.target"},
		{`{"t":{{ json .Labels.target }}}`, ""},
		{`{"t":{{ .Labels.target | json }}}`, ""},
		{`{"q":"a \"{{ .Run.ID }}\""}`, ""},
		{`{"esc":"\\", "t":{{ json .Target }}}`, ""},
		{`{{ json .Labels }}`, ""},
		{`restart {{ .Labels.target }}`, ""},
	}
	for _, tc := range tests {
		got := concatenatedJSON(tc.body)
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("concatenatedJSON(%s) = %q, want none", tc.body, got)
		case tc.want != "" && (len(got) == 0 || strings.TrimSpace(got[0]) != tc.want):
			t.Errorf("concatenatedJSON(%s) = %q, want %q first", tc.body, got, tc.want)
		}
	}
}

func TestJSONValue(t *testing.T) {
	got, err := JSONValue(`s6","admin":true,"x":"`)
	if err != nil || got != `"s6\",\"admin\":true,\"x\":\""` {
		t.Errorf("JSONValue = %s, %v", got, err)
	}
	if got, err := JSONValue(map[string]string{"a": "b"}); err != nil || got != `{"a":"b"}` {
		t.Errorf("JSONValue(map) = %s, %v", got, err)
	}
}

package remediate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRenderParams renders step params over arbitrary alert labels (what a
// webhook sender controls) and arbitrary templates (what a configuration
// holds): rendering never panics, and a label reaches a param as exactly
// its value, as data, whatever characters it holds.
func FuzzRenderParams(f *testing.F) {
	f.Add("{{ .Labels.target }}", "pg-0")
	f.Add(`{"t":"{{ .Labels.target }}"}`, `s6","admin":true,"x":"`)
	f.Add("{{ .Annotations.summary }} on {{ .Target }}", "$(id); touch /tmp/pwned")
	f.Add("{{ if .Labels.target }}{{ .Incident.ID }}{{ end }}", "{{ .Labels.target }}")
	f.Fuzz(func(t *testing.T, tmpl, label string) {
		data := TemplateData{Labels: map[string]string{"target": label}, Annotations: map[string]string{"summary": label},
			Target: label, Incident: TemplateIncident{ID: "inc-000001"}, Run: TemplateRun{ID: "run-000001"}}
		out, err := renderParams(map[string]any{"argv": []any{"echo", "{{ .Labels.target }}"}}, data)
		if err != nil {
			t.Fatalf("rendering a label: %v", err)
		}
		if got := out["argv"].([]any)[1]; utf8.ValidString(label) && got != label {
			t.Fatalf("label %q rendered as %q", label, got)
		}
		// Templates come from the configuration; ones that could run long
		// or allocate without bound (range over an int, printf widths)
		// are the operator's to avoid, not the fuzzer's to find.
		if len(tmpl) > 256 || strings.Contains(tmpl, "range") || strings.Contains(tmpl, "printf") {
			return
		}
		params := map[string]any{"a": tmpl, "b": []any{tmpl, map[string]any{"c": tmpl}}}
		if parseTemplates(params) != nil {
			return
		}
		_, _ = renderParams(params, data)
	})
}

package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"text/template"
	"text/template/parse"
)

// StepTemplateFuncs returns the functions every step params template may
// call, at check and at render alike: json encodes its argument as one
// JSON value ({{ json .Labels.target }} gives "db-1", quotes included), so
// that a label cannot close a string and add keys to a JSON body.
func StepTemplateFuncs() template.FuncMap {
	return template.FuncMap{"json": JSONValue}
}

// JSONValue encodes v as JSON: a string becomes a quoted, escaped JSON
// string.
func JSONValue(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("json: %w", err)
	}
	return string(b), nil
}

// withStepFuncs adds StepTemplateFuncs to extra, which wins.
func withStepFuncs(extra template.FuncMap) template.FuncMap {
	funcs := StepTemplateFuncs()
	maps.Copy(funcs, extra)
	return funcs
}

// templateFields returns the fields of the data step params are rendered
// over: {{ .Labels.target }}, {{ .Annotations.summary }}, {{ .Incident }},
// {{ .Target }}, {{ .Run }}.
func templateFields() []string {
	return []string{".Labels", ".Annotations", ".Incident", ".Target", ".Run"}
}

// templateErrorRE strips text/template's "template: NAME:LINE: " prefix.
var templateErrorRE = regexp.MustCompile(`^template: [^:]*:\d+:(?:\d+:)? ?`)

// checkTemplate reports whether s parses as a text/template with the given
// extra functions.
func checkTemplate(s string, funcs template.FuncMap) error {
	if _, err := template.New("param").Funcs(withStepFuncs(funcs)).Parse(s); err != nil {
		return fmt.Errorf("invalid template %q: %s", s, templateErrorRE.ReplaceAllString(err.Error(), ""))
	}
	return nil
}

// unknownTemplateFields returns the top-level fields a template uses that
// are not in templateFields(), such as a misspelt .Lables. Fields under
// {{ with }} and {{ range }}, where dot is rebound, are not checked.
func unknownTemplateFields(s string, funcs template.FuncMap) []string {
	t, err := template.New("param").Funcs(withStepFuncs(funcs)).Parse(s)
	if err != nil || t.Tree == nil {
		return nil
	}
	known := map[string]bool{}
	for _, f := range templateFields() {
		known[f[1:]] = true
	}
	var bad []string
	seen := map[string]bool{}
	report := func(name string) {
		if !known[name] && !seen[name] {
			seen[name] = true
			bad = append(bad, "."+name)
		}
	}
	var walk func(n parse.Node, rebound bool)
	walk = func(n parse.Node, rebound bool) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c, rebound)
			}
		case *parse.ActionNode:
			walk(n.Pipe, rebound)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c, rebound)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a, rebound)
			}
		case *parse.FieldNode:
			if !rebound {
				report(n.Ident[0])
			}
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				report(n.Ident[1])
			}
		case *parse.ChainNode:
			walk(n.Node, rebound)
		case *parse.IfNode:
			walk(n.Pipe, rebound)
			walk(n.List, rebound)
			walk(n.ElseList, rebound)
		case *parse.WithNode:
			walk(n.Pipe, rebound)
			walk(n.List, true)
			walk(n.ElseList, rebound)
		case *parse.RangeNode:
			walk(n.Pipe, rebound)
			walk(n.List, true)
			walk(n.ElseList, rebound)
		case *parse.TemplateNode:
			walk(n.Pipe, rebound)
		}
	}
	walk(t.Root, false)
	return bad
}

// concatenatedJSON returns the template actions of a JSON-looking string
// (a body starting with { or [) whose output is pasted into the document
// unencoded: inside a JSON string literal, or outside one without the json
// function, when they show label-derived data (.Labels, .Annotations,
// .Target, .Incident.Summary). A label holding `","admin":true,"x":"` would
// otherwise add keys to the document.
func concatenatedJSON(s string) []string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "[") && (!strings.HasPrefix(t, "{") || strings.HasPrefix(t, "{{")) {
		return nil
	}
	var bad []string
	inString := false
	for i := 0; i < len(t); i++ {
		if strings.HasPrefix(t[i:], "{{") {
			end := strings.Index(t[i:], "}}")
			if end < 0 {
				break
			}
			act := strings.TrimSpace(strings.Trim(t[i+2:i+end], "-"))
			if labelDerived(act) && (inString || !encodedJSON(act)) {
				bad = append(bad, " "+act+" ")
			}
			i += end + 1
			continue
		}
		switch c := t[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		}
	}
	return bad
}

// labelDerived reports whether a template action shows data an alert
// chose.
func labelDerived(act string) bool {
	for _, f := range []string{".Labels", ".Annotations", ".Target", ".Incident.Summary"} {
		if strings.Contains(act, f) {
			return true
		}
	}
	return false
}

// encodedJSON reports whether a template action's last command is json.
func encodedJSON(act string) bool {
	cmds := strings.Split(act, "|")
	f := strings.Fields(cmds[len(cmds)-1])
	return len(f) > 0 && f[0] == "json"
}

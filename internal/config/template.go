package config

import (
	"fmt"
	"regexp"
	"text/template"
	"text/template/parse"
)

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
	if _, err := template.New("param").Funcs(funcs).Parse(s); err != nil {
		return fmt.Errorf("invalid template %q: %s", s, templateErrorRE.ReplaceAllString(err.Error(), ""))
	}
	return nil
}

// unknownTemplateFields returns the top-level fields a template uses that
// are not in templateFields(), such as a misspelt .Lables. Fields under
// {{ with }} and {{ range }}, where dot is rebound, are not checked.
func unknownTemplateFields(s string, funcs template.FuncMap) []string {
	t, err := template.New("param").Funcs(funcs).Parse(s)
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

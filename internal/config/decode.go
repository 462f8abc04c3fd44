package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/fruitfulplanet/drguard/internal/params"
)

var (
	durationType = reflect.TypeFor[model.Duration]()
	// yamlLineRE matches yaml.v3's "line N: message" error form.
	yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	// yamlUnknownFieldRE matches yaml.v3's KnownFields error.
	yamlUnknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// decode parses data into a Config and records every structural problem:
// YAML syntax, unknown or repeated keys, values of the wrong shape and
// invalid durations. It fills ps.lines with the line of every value. It
// returns nil when the document cannot be decoded at all.
//
// Strictness does not rely on yaml.v3 alone: a schema walk over the node
// tree finds every unknown key with its path and line, and removes bad
// values so that decoding continues and all problems are reported at once
// (yaml.v3 stops at the first invalid model.Duration). When the walk finds
// nothing, the file is decoded again from its bytes with KnownFields(true)
// as a second line of defence.
func decode(data []byte, ps *problems) *Config {
	if len(bytes.TrimSpace(data)) == 0 {
		ps.addAt(0, "", "the configuration is empty")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			ps.addAt(0, "", "the configuration is empty (only comments)")
		} else {
			ps.addYAMLError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		ps.addYAMLError(err)
		return nil
	default:
		ps.addAt(extra.Line, "", "a second YAML document starts here; the configuration must be a single document")
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if isNull(doc) {
		ps.addAt(0, "", "the configuration is empty")
		return nil
	}
	if doc.Kind != yaml.MappingNode {
		ps.addAt(doc.Line, "", "the configuration must be a mapping of sections (server, auth, policies, ...), not "+kindName(doc))
		return nil
	}

	w := &walker{ps: ps}
	w.walk(reflect.TypeFor[Config](), doc, "")

	var cfg Config
	var err error
	if w.changed {
		err = root.Decode(&cfg)
	} else {
		strict := yaml.NewDecoder(bytes.NewReader(data))
		strict.KnownFields(true)
		err = strict.Decode(&cfg)
	}
	if err != nil {
		ps.addYAMLError(err)
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil
		}
	}
	return &cfg
}

// addYAMLError rewrites yaml.v3 errors ("yaml: line 7: ...") into problems
// that carry the file and line.
func (ps *problems) addYAMLError(err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			ps.addYAMLMessage(msg)
		}
		return
	}
	ps.addYAMLMessage(err.Error())
}

func (ps *problems) addYAMLMessage(msg string) {
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlUnknownFieldRE.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("unknown key %q", m[1])
	} else {
		msg = "invalid YAML: " + msg
	}
	ps.addAt(line, "", msg)
}

// walker checks a YAML node tree against the shape of a Go type.
type walker struct {
	ps *problems
	// changed is set when the walk removed or blanked a node.
	changed bool
}

// walk checks n against type t at path, records line numbers, and blanks
// or removes whatever cannot be decoded.
func (w *walker) walk(t reflect.Type, n *yaml.Node, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if isNull(n) {
		return
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			w.bad(n, path, "expected a duration such as 30s, 5m, 1h or 30d, not "+kindName(n))
		} else if _, err := model.ParseDuration(n.Value); err != nil {
			w.bad(n, path, fmt.Sprintf("invalid duration %q: write a number and a unit (ms, s, m, h, d, w, y), e.g. 30s, 5m, 30d", n.Value))
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.bad(n, path, "expected a mapping of keys, not "+kindName(n))
			return
		}
		w.walkStruct(t, n, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.bad(n, path, "expected a list, not "+kindName(n))
			return
		}
		for i, item := range n.Content {
			p := indexPath(path, i)
			w.ps.lines[p] = item.Line
			w.walk(t.Elem(), item, p)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.bad(n, path, "expected a mapping, not "+kindName(n))
			return
		}
		w.walkPairs(n, path, func(_, v *yaml.Node, p string) bool {
			w.walk(t.Elem(), v, p)
			return true
		})
	case t.Kind() == reflect.Interface:
		w.index(n, path)
	default:
		if n.Kind != yaml.ScalarNode {
			w.bad(n, path, "expected "+params.TypeName(t)+", not "+kindName(n))
		} else if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.bad(n, path, fmt.Sprintf("expected %s, not %q", params.TypeName(t), n.Value))
		}
	}
}

// walkStruct checks a mapping's keys against a struct's YAML fields.
func (w *walker) walkStruct(t reflect.Type, n *yaml.Node, path string) {
	fields := yamlFields(t)
	w.walkPairs(n, path, func(k, v *yaml.Node, p string) bool {
		ft, ok := fields[k.Value]
		if !ok {
			w.ps.addAt(k.Line, "", unknownKeyMessage(k.Value, path, fields))
			return false
		}
		w.walk(ft, v, p)
		return true
	})
}

// walkPairs calls fn for each key of a mapping, in order, after recording
// the key's line. Merge keys (<<) are followed. Repeated keys, and keys for
// which fn returns false, are removed from the mapping.
func (w *walker) walkPairs(n *yaml.Node, path string, fn func(k, v *yaml.Node, p string) bool) {
	seen := map[string]int{}
	kept := make([]*yaml.Node, 0, len(n.Content))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			kept = append(kept, k, v)
			continue
		}
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			w.ps.addAt(k.Line, p, fmt.Sprintf("key %q is repeated (first on line %d)", k.Value, first))
			w.changed = true
			continue
		}
		seen[k.Value] = k.Line
		w.ps.lines[p] = k.Line
		if !fn(k, v, p) {
			w.changed = true
			continue
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}

// index records the lines of free-form values such as step params.
func (w *walker) index(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinPath(path, n.Content[i].Value)
			w.ps.lines[p] = n.Content[i].Line
			w.index(n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := indexPath(path, i)
			w.ps.lines[p] = item.Line
			w.index(item, p)
		}
	}
}

// bad reports a value that cannot be decoded and blanks it, so decoding
// continues and later checks do not report it again.
func (w *walker) bad(n *yaml.Node, path, msg string) {
	w.ps.addAt(n.Line, path, msg)
	w.ps.suppress(path)
	line, col := n.Line, n.Column
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: line, Column: col}
	w.changed = true
}

// yamlFields maps a struct's YAML keys to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// unknownKeyMessage says which key is unknown where, and suggests the
// closest known key.
func unknownKeyMessage(key, path string, fields map[string]reflect.Type) string {
	where := path
	if where == "" {
		where = "config"
	}
	msg := fmt.Sprintf("unknown key %q in %s", key, where)
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	if s := params.Closest(key, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// kindName describes a node for error messages. It never echoes a scalar:
// the value might be a credential written in the wrong place.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "an alias"
	}
}

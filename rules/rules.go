// Package rules holds drguard's Prometheus alerting and recording rules.
// The rule files are the product: Prometheus loads them as they are
// (rule_files), and deploy/base/prometheusrule.yaml wraps the same groups
// in a PrometheusRule for the Prometheus Operator. They are embedded here so
// that generators and tests read exactly what ships.
package rules

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"gopkg.in/yaml.v3"
)

// FS holds the rule files (*.rules.yml). Unit tests for them are under
// tests/ and run with promtool.
//
//go:embed *.rules.yml
var FS embed.FS

// Files returns the names of the rule files in FS, sorted.
func Files() []string {
	names, err := fs.Glob(FS, "*.rules.yml")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	sort.Strings(names)
	return names
}

// Rule is one alerting or recording rule as written in a rule file.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Group is a named group of rules.
type Group struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// Groups returns the groups of every rule file, in file order.
func Groups() ([]Group, error) {
	var all []Group
	for _, name := range Files() {
		b, err := FS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var f struct {
			Groups []Group `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, f.Groups...)
	}
	return all, nil
}

// GroupNodes returns the groups of every rule file as YAML nodes, in file
// order, keeping each rule's keys in the order they were written. It is
// what a PrometheusRule's spec.groups holds.
func GroupNodes() ([]*yaml.Node, error) {
	var all []*yaml.Node
	for _, name := range Files() {
		b, err := FS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: not a mapping", name)
		}
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "groups" {
				all = append(all, root.Content[i+1].Content...)
			}
		}
	}
	return all, nil
}

// Package deploy builds the generated files of the kustomize base in
// deploy/base from their sources, so that they cannot drift apart:
// prometheusrule.yaml from the rule files in rules/, and drguard.yaml (the
// ConfigMap's content) from deploy/examples/drguard.yaml. Run
// `go run ./deploy/gen` after changing either source; a test fails while the
// committed files differ from what Generate returns.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/fruitfulplanet/drguard/rules"
)

// Generated files, relative to the repository root, with their sources.
const (
	PrometheusRulePath = "deploy/base/prometheusrule.yaml"
	ConfigPath         = "deploy/base/drguard.yaml"
	ExampleConfigPath  = "deploy/examples/drguard.yaml"
	// HAConfigPath is the HA overlay's configuration: the example's, on
	// the PostgreSQL journal.
	HAConfigPath = "deploy/overlays/ha/drguard.yaml"
)

// haStorage is the storage section of the HA overlay's configuration.
const haStorage = `storage:
  type: postgres # shared by the replicas, which elect one leader
  # A database of its own, outside the primary region (drguard check
  # refuses a guarded one); journal.dsn in the Secret drguard-secrets.
  dsn_file: secrets/journal.dsn
  lease: {ttl: 20s, renew_interval: 5s, renew_deadline: 15s} # the defaults
`

// Generate returns the content of every generated file by its path relative
// to root, the repository root.
func Generate(root string) (map[string][]byte, error) {
	pr, err := PrometheusRule()
	if err != nil {
		return nil, err
	}
	example, err := os.ReadFile(filepath.Join(root, ExampleConfigPath))
	if err != nil {
		return nil, err
	}
	header := "# Generated from " + ExampleConfigPath + " by `go run ./deploy/gen`. DO NOT EDIT.\n" +
		"# In the pod the secrets/ directory beside this file is the Secret drguard-secrets.\n"
	cfg := append([]byte(header), example...)
	ha, err := withStorage(example, haStorage)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{PrometheusRulePath: pr, ConfigPath: cfg,
		HAConfigPath: append([]byte(header+"# The storage section is the PostgreSQL journal's.\n"), ha...)}, nil
}

// withStorage replaces the top-level storage section of a configuration
// (from its key to the next blank line) with storage.
func withStorage(cfg []byte, storage string) ([]byte, error) {
	start := bytes.Index(cfg, []byte("\nstorage:\n"))
	if start < 0 {
		return nil, fmt.Errorf("%s has no top-level storage section", ExampleConfigPath)
	}
	start++
	end := bytes.Index(cfg[start:], []byte("\n\n"))
	if end < 0 {
		return nil, fmt.Errorf("%s: the storage section does not end with a blank line", ExampleConfigPath)
	}
	out := append([]byte{}, cfg[:start]...)
	out = append(out, storage...)
	return append(out, cfg[start+end+1:]...), nil
}

// PrometheusRule returns a monitoring.coreos.com/v1 PrometheusRule whose
// spec.groups are the groups of every rule file in rules/, in file order.
func PrometheusRule() ([]byte, error) {
	groups, err := rules.GroupNodes()
	if err != nil {
		return nil, err
	}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	mapping := func(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }
	doc := mapping(
		str("apiVersion"), str("monitoring.coreos.com/v1"),
		str("kind"), str("PrometheusRule"),
		str("metadata"), mapping(
			str("name"), str("drguard"),
			str("labels"), mapping(str("app.kubernetes.io/name"), str("drguard")),
		),
		str("spec"), mapping(
			str("groups"), &yaml.Node{Kind: yaml.SequenceNode, Content: groups},
		),
	)
	var buf bytes.Buffer
	buf.WriteString("# Generated from rules/*.rules.yml by `go run ./deploy/gen`. DO NOT EDIT.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode PrometheusRule: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

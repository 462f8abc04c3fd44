// Package dashboards builds drguard's Grafana dashboards from Go with the
// Grafana Foundation SDK (github.com/grafana/grafana-foundation-sdk/go), so
// that every panel shares one data source variable, one set of template
// variables and one layout, and queries are written once. The JSON files
// beside this package are its output: run `go run ./dashboards/gen` after a
// change; a test fails while the committed JSON is out of date.
package dashboards

//lint:file-ignore SA1019 the classic dashboard model (schema v1) is the JSON every Grafana since 10.4 imports; the SDK deprecates it for dashboardv2, which only Grafana 12 reads.

import (
	"bytes"
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// SchemaVersion is the Grafana dashboard schema the JSON declares
// (Grafana 10.4 and later).
const SchemaVersion = 39

// JSON renders d the way the committed files are written.
func JSON(d dashboard.Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Load decodes a dashboard's JSON into the SDK's model, each panel's
// options and queries into the types of its kind. (The SDK's strict
// decoder is not used: in v0.0.22 it drops every panel, its per-panel
// decoders returning an empty error list as an error.)
func Load(raw []byte) (dashboard.Dashboard, error) {
	registerPlugins()
	var d dashboard.Dashboard
	err := json.Unmarshal(raw, &d)
	return d, err
}

// Query is one PromQL query of a panel.
type Query struct {
	Panel string // the panel's title
	*prometheus.Dataquery
}

// Panels returns d's panels, rows left out.
func Panels(d dashboard.Dashboard) []*dashboard.Panel {
	var out []*dashboard.Panel
	for _, p := range d.Panels {
		if p.Panel != nil {
			out = append(out, p.Panel)
		}
	}
	return out
}

// Queries returns every PromQL query of d's panels, in order.
func Queries(d dashboard.Dashboard) []Query {
	var out []Query
	for _, p := range Panels(d) {
		for _, t := range p.Targets {
			switch pq := t.(type) {
			case *prometheus.Dataquery: // decoded
				out = append(out, Query{Panel: deref(p.Title), Dataquery: pq})
			case prometheus.Dataquery: // built
				out = append(out, Query{Panel: deref(p.Title), Dataquery: &pq})
			}
		}
	}
	return out
}

// deref returns *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

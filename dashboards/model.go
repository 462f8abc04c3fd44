// Package dashboards builds drguard's Grafana dashboards from Go, so that
// every panel shares one data source variable, one set of template
// variables and one layout, and queries are written once. The JSON files
// beside this package are its output: run `go run ./dashboards/gen` after a
// change; a test fails while the committed JSON is out of date.
package dashboards

import (
	"bytes"
	"encoding/json"
)

// SchemaVersion is the Grafana dashboard schema the JSON declares
// (Grafana 10.4 and later).
const SchemaVersion = 39

// ref is a Grafana data source reference.
type ref struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// promDS is the Prometheus data source chosen by the datasource variable.
var promDS = &ref{Type: "prometheus", UID: "${datasource}"}

// Dashboard is the subset of Grafana's dashboard model drguard uses.
type Dashboard struct {
	Annotations          map[string]any `json:"annotations"`
	Description          string         `json:"description"`
	Editable             bool           `json:"editable"`
	FiscalYearStartMonth int            `json:"fiscalYearStartMonth"`
	GraphTooltip         int            `json:"graphTooltip"`
	ID                   *int           `json:"id"`
	Links                []Link         `json:"links"`
	Panels               []*Panel       `json:"panels"`
	Refresh              string         `json:"refresh"`
	SchemaVersion        int            `json:"schemaVersion"`
	Tags                 []string       `json:"tags"`
	Templating           struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Time       TimeRange      `json:"time"`
	Timepicker map[string]any `json:"timepicker"`
	Timezone   string         `json:"timezone"`
	Title      string         `json:"title"`
	UID        string         `json:"uid"`
	Version    int            `json:"version"`
	WeekStart  string         `json:"weekStart"`
}

// Link is a dashboard link (to the other drguard dashboards).
type Link struct {
	AsDropdown  bool     `json:"asDropdown"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	Tags        []string `json:"tags"`
	Title       string   `json:"title"`
	Type        string   `json:"type"`
}

// TimeRange is the default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Variable is a template variable.
type Variable struct {
	AllValue    string         `json:"allValue,omitempty"`
	Current     map[string]any `json:"current"`
	Datasource  *ref           `json:"datasource,omitempty"`
	Definition  string         `json:"definition,omitempty"`
	Hide        int            `json:"hide"`
	IncludeAll  bool           `json:"includeAll"`
	Label       string         `json:"label"`
	Multi       bool           `json:"multi"`
	Name        string         `json:"name"`
	Options     []any          `json:"options"`
	Query       any            `json:"query"`
	Refresh     int            `json:"refresh"`
	Regex       string         `json:"regex"`
	SkipURLSync bool           `json:"skipUrlSync"`
	Sort        int            `json:"sort"`
	Type        string         `json:"type"`
}

// Panel is a Grafana panel or a row.
type Panel struct {
	Collapsed   *bool          `json:"collapsed,omitempty"`
	Datasource  *ref           `json:"datasource,omitempty"`
	Description string         `json:"description,omitempty"`
	FieldConfig *FieldConfig   `json:"fieldConfig,omitempty"`
	GridPos     GridPos        `json:"gridPos"`
	ID          int            `json:"id"`
	Options     map[string]any `json:"options,omitempty"`
	Panels      []*Panel       `json:"panels,omitempty"`
	Targets     []Target       `json:"targets,omitempty"`
	Title       string         `json:"title"`
	Type        string         `json:"type"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// FieldConfig holds a panel's field defaults and overrides.
type FieldConfig struct {
	Defaults  map[string]any `json:"defaults"`
	Overrides []any          `json:"overrides"`
}

// Target is one PromQL query of a panel.
type Target struct {
	Datasource   *ref   `json:"datasource"`
	EditorMode   string `json:"editorMode"`
	Expr         string `json:"expr"`
	Instant      bool   `json:"instant"`
	LegendFormat string `json:"legendFormat"`
	Range        bool   `json:"range"`
	RefID        string `json:"refId"`
}

// JSON renders d the way the committed files are written.
func (d *Dashboard) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

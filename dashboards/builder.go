package dashboards

import "fmt"

// Files maps each committed JSON file name to the function that builds it.
var Files = map[string]func() *Dashboard{
	"drguard-overview.json":           Overview,
	"drguard-probes-remediation.json": ProbesRemediation,
}

// builder lays panels out left to right on Grafana's 24-column grid,
// wrapping to a new line when a panel does not fit.
type builder struct {
	d       *Dashboard
	x, y, h int
	nextID  int
}

// newDashboard starts a dashboard with drguard's defaults: the datasource
// variable first, then vars; a link to the other drguard dashboards; 30s
// refresh over the last 6 hours.
func newDashboard(uid, title, description string, vars ...Variable) *builder {
	d := &Dashboard{
		Annotations: map[string]any{"list": []any{map[string]any{
			"builtIn": 1, "datasource": map[string]any{"type": "grafana", "uid": "-- Grafana --"},
			"enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)",
			"name": "Annotations & Alerts", "type": "dashboard",
		}}},
		Description:   description,
		Editable:      true,
		GraphTooltip:  1,
		Links:         []Link{{AsDropdown: false, IncludeVars: true, KeepTime: true, Tags: []string{"drguard"}, Title: "drguard", Type: "dashboards"}},
		Refresh:       "30s",
		SchemaVersion: SchemaVersion,
		Tags:          []string{"drguard", "disaster-recovery"},
		Time:          TimeRange{From: "now-6h", To: "now"},
		Timepicker:    map[string]any{},
		Title:         title,
		UID:           uid,
		Version:       1,
	}
	d.Templating.List = append([]Variable{datasourceVar()}, vars...)
	return &builder{d: d, nextID: 1}
}

// row starts a new row titled title.
func (b *builder) row(title string) {
	b.newline()
	collapsed := false
	b.d.Panels = append(b.d.Panels, &Panel{
		Collapsed: &collapsed, GridPos: GridPos{H: 1, W: 24, X: 0, Y: b.y}, ID: b.id(), Title: title, Type: "row",
	})
	b.y++
}

// newline moves below the tallest panel of the current line.
func (b *builder) newline() {
	if b.x > 0 {
		b.x, b.y, b.h = 0, b.y+b.h, 0
	}
}

// id returns the next panel id.
func (b *builder) id() int { b.nextID++; return b.nextID - 1 }

// add places p with width w and height h.
func (b *builder) add(w, h int, p *Panel) {
	if b.x+w > 24 {
		b.newline()
	}
	p.GridPos = GridPos{H: h, W: w, X: b.x, Y: b.y}
	p.ID = b.id()
	p.Datasource = promDS
	for i := range p.Targets {
		p.Targets[i].Datasource = promDS
		p.Targets[i].RefID = string(rune('A' + i))
		p.Targets[i].EditorMode = "code"
	}
	b.d.Panels = append(b.d.Panels, p)
	b.x += w
	b.h = max(b.h, h)
}

// q is a range query with a legend.
func q(expr, legend string) Target {
	return Target{Expr: expr, LegendFormat: legend, Range: true}
}

// instant is an instant query with a legend (stats, gauges, bar gauges).
func instant(expr, legend string) Target {
	return Target{Expr: expr, LegendFormat: legend, Instant: true}
}

// thresholds builds Grafana threshold steps: a base color, then
// value/color pairs.
func thresholds(base string, steps ...any) map[string]any {
	list := []any{map[string]any{"color": base, "value": nil}}
	for i := 0; i+1 < len(steps); i += 2 {
		list = append(list, map[string]any{"value": steps[i], "color": steps[i+1]})
	}
	return map[string]any{"mode": "absolute", "steps": list}
}

// reduceLast shows a series' last non-null value.
var reduceLast = map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}

// timeseries is a time series panel with a table legend (last, max).
func timeseries(title, description, unit string, targets ...Target) *Panel {
	return &Panel{
		Type: "timeseries", Title: title, Description: description, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: map[string]any{
			"unit": unit, "color": map[string]any{"mode": "palette-classic"},
			"custom":     map[string]any{"lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": false},
			"thresholds": thresholds("green"),
		}, Overrides: []any{}},
		Options: map[string]any{
			"legend":  map[string]any{"displayMode": "table", "placement": "bottom", "showLegend": true, "calcs": []string{"lastNotNull", "max"}},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		},
	}
}

// dashedObjective draws series whose name ends in "objective" as a dashed
// red line, so exposure and estimates read against it.
func dashedObjective(p *Panel) *Panel {
	p.FieldConfig.Overrides = append(p.FieldConfig.Overrides, map[string]any{
		"matcher": map[string]any{"id": "byRegexp", "options": ".*objective$"},
		"properties": []any{
			map[string]any{"id": "custom.lineStyle", "value": map[string]any{"fill": "dash", "dash": []int{10, 10}}},
			map[string]any{"id": "color", "value": map[string]any{"mode": "fixed", "fixedColor": "red"}},
			map[string]any{"id": "custom.fillOpacity", "value": 0},
		},
	})
	return p
}

// stat is a single-value panel colored by thresholds.
func stat(title, description, unit string, th map[string]any, targets ...Target) *Panel {
	return &Panel{
		Type: "stat", Title: title, Description: description, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: map[string]any{"unit": unit, "color": map[string]any{"mode": "thresholds"}, "thresholds": th}, Overrides: []any{}},
		Options: map[string]any{
			"reduceOptions": reduceLast, "colorMode": "background", "graphMode": "none",
			"justifyMode": "auto", "orientation": "auto", "textMode": "auto", "wideLayout": true,
		},
	}
}

// gauge is a gauge between minV and maxV colored by thresholds.
func gauge(title, description, unit string, minV, maxV float64, th map[string]any, targets ...Target) *Panel {
	return &Panel{
		Type: "gauge", Title: title, Description: description, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: map[string]any{"unit": unit, "min": minV, "max": maxV, "color": map[string]any{"mode": "thresholds"}, "thresholds": th}, Overrides: []any{}},
		Options:     map[string]any{"reduceOptions": reduceLast, "showThresholdLabels": false, "showThresholdMarkers": true, "orientation": "auto"},
	}
}

// bargauge is a horizontal bar per series colored by thresholds.
func bargauge(title, description, unit string, th map[string]any, targets ...Target) *Panel {
	return &Panel{
		Type: "bargauge", Title: title, Description: description, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: map[string]any{"unit": unit, "min": 0, "color": map[string]any{"mode": "thresholds"}, "thresholds": th}, Overrides: []any{}},
		Options: map[string]any{
			"reduceOptions": reduceLast, "displayMode": "gradient", "orientation": "horizontal",
			"showUnfilled": true, "valueMode": "color", "namePlacement": "auto", "sizing": "auto",
		},
	}
}

// stateTimeline shows 0/1 series as FAIL/OK bands.
func stateTimeline(title, description, bad, good string, targets ...Target) *Panel {
	return &Panel{
		Type: "state-timeline", Title: title, Description: description, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: map[string]any{
			"color":      map[string]any{"mode": "thresholds"},
			"thresholds": thresholds("red", 1, "green"),
			"mappings": []any{map[string]any{"type": "value", "options": map[string]any{
				"0": map[string]any{"text": bad, "color": "red", "index": 0},
				"1": map[string]any{"text": good, "color": "green", "index": 1},
			}}},
		}, Overrides: []any{}},
		Options: map[string]any{
			"mergeValues": true, "showValue": "auto", "alignValue": "left", "rowHeight": 0.9,
			"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": false},
		},
	}
}

// datasourceVar lets the viewer pick any Prometheus data source.
func datasourceVar() Variable {
	return Variable{Current: map[string]any{}, Label: "Data source", Name: "datasource", Options: []any{}, Query: "prometheus", Refresh: 1, Type: "datasource"}
}

// labelVar is a multi-value variable over the values of label in query's
// series, "All" meaning any value (including none).
func labelVar(name, label, metric string) Variable {
	def := fmt.Sprintf("label_values(%s, %s)", metric, name)
	return Variable{
		AllValue: ".*", Current: map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		Datasource: promDS, Definition: def, IncludeAll: true, Label: label, Multi: true, Name: name, Options: []any{},
		Query:   map[string]any{"qryType": 1, "query": def, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
		Refresh: 2, Sort: 1, Type: "query",
	}
}

var (
	serviceVar = labelVar("service", "Service", `{__name__=~"drguard_.+"}`)
	targetVar  = labelVar("target", "Target", `{__name__=~"drguard_.+"}`)
	probeVar   = labelVar("probe", "Probe", `drguard_probe_success{service=~"$service"}`)
)

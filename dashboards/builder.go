package dashboards

//lint:file-ignore SA1019 the classic dashboard model (schema v1) is the JSON every Grafana since 10.4 imports; the SDK deprecates it for dashboardv2, which only Grafana 12 reads.

import (
	"fmt"
	"sync"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/gauge"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Files maps each committed JSON file name to the function that builds it.
var Files = map[string]func() (dashboard.Dashboard, error){
	"drguard-overview.json":           Overview,
	"drguard-probes-remediation.json": ProbesRemediation,
}

// registerPlugins tells the SDK how to decode the panel kinds and the
// query kind drguard's dashboards use.
var registerPlugins = sync.OnceFunc(func() {
	rt := cog.NewRuntime()
	for _, v := range []variants.PanelcfgConfig{timeseries.VariantConfig(), stat.VariantConfig(),
		gauge.VariantConfig(), bargauge.VariantConfig(), statetimeline.VariantConfig()} {
		rt.RegisterPanelcfgVariant(v)
	}
	rt.RegisterDataqueryVariant(prometheus.VariantConfig())
})

// builder adds panels to an SDK dashboard builder, which lays them out
// left to right on Grafana's 24-column grid; it numbers them and points
// every panel and query at the datasource variable.
type builder struct {
	d      *dashboard.DashboardBuilder
	nextID uint32
}

// promDS is the Prometheus data source chosen by the datasource variable.
var promDS = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// newDashboard starts a dashboard with drguard's defaults: the datasource
// variable first, then vars; Grafana's built-in annotations; a link to the
// other drguard dashboards; 30s refresh over the last 6 hours.
func newDashboard(uid, title, description string, vars ...cog.Builder[dashboard.VariableModel]) *builder {
	d := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"drguard", "disaster-recovery"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone("").
		Version(1).
		Annotation(dashboard.NewAnnotationQueryBuilder().
			Name("Annotations & Alerts").
			Datasource(dashboard.DataSourceRef{Type: cog.ToPtr("grafana"), Uid: cog.ToPtr("-- Grafana --")}).
			Enable(true).Hide(true).IconColor("rgba(0, 211, 255, 1)").BuiltIn(1).Type("dashboard")).
		Link(dashboard.NewDashboardLinkBuilder("drguard").
			Type(dashboard.DashboardLinkTypeDashboards).Tags([]string{"drguard"}).
			AsDropdown(false).IncludeVars(true).KeepTime(true)).
		WithVariable(datasourceVar())
	for _, v := range vars {
		d.WithVariable(v)
	}
	return &builder{d: d, nextID: 1}
}

// build returns the dashboard, declaring SchemaVersion. The SDK places
// links and annotation toggles in the controls menu of Grafana 12; drguard
// keeps its link in the dashboard's top bar, where every Grafana shows it.
func (b *builder) build() (dashboard.Dashboard, error) {
	d, err := b.d.Build()
	if err != nil {
		return d, err
	}
	d.SchemaVersion = SchemaVersion
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	for i := range d.Annotations.List {
		d.Annotations.List[i].Placement = nil
	}
	return d, nil
}

// id returns the next panel id.
func (b *builder) id() uint32 { b.nextID++; return b.nextID - 1 }

// row starts a new, expanded row titled title below the panels so far.
func (b *builder) row(title string) {
	b.d.WithRow(dashboard.NewRowBuilder(title).Id(b.id()))
}

// panel is what every SDK panel builder offers that drguard sets.
type panel[T any] interface {
	cog.Builder[dashboard.Panel]
	Id(uint32) T
	Span(uint32) T
	Height(uint32) T
	Datasource(common.DataSourceRef) T
}

// add places p with width w and height h, after the panels so far. The
// SDK starts a new line only once a line is full, so each line of panels
// adds up to 24 columns (TestDashboardConventions checks the grid).
func add[T panel[T]](b *builder, w, h uint32, p T) {
	p.Id(b.id())
	p.Span(w)
	p.Height(h)
	p.Datasource(promDS)
	b.d.WithPanel(p)
}

// query is a PromQL query on the datasource variable, in the code editor.
func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend).
		Datasource(promDS).EditorMode(prometheus.QueryEditorModeCode)
}

// q is a range query with a legend.
func q(expr, legend string) *prometheus.DataqueryBuilder { return query(expr, legend).Range() }

// instant is an instant query with a legend (stats, gauges, bar gauges).
func instant(expr, legend string) *prometheus.DataqueryBuilder { return query(expr, legend).Instant() }

// targets names queries A, B, … in order.
func targets(qs []*prometheus.DataqueryBuilder) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, x := range qs {
		out[i] = x.RefId(string(rune('A' + i)))
	}
	return out
}

// thresholds builds absolute threshold steps: a base color, then
// value/color pairs.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	list := []dashboard.Threshold{{Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		v := toFloat(steps[i])
		list = append(list, dashboard.Threshold{Value: &v, Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(list)
}

// toFloat converts a threshold value written as an int or a float.
func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	panic(fmt.Sprintf("threshold value %v is not a number", v))
}

// colors colors a panel's fields by mode.
func colors(mode dashboard.FieldColorModeId) *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(mode)
}

// reduceLast shows a series' last non-null value.
func reduceLast() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Fields("").Values(false)
}

// timeseriesPanel is a time series panel with a table legend (last, max).
func timeseriesPanel(title, description, unit string, qs ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).Targets(targets(qs)).
		ColorScheme(colors(dashboard.FieldColorModeIdPaletteClassic)).
		LineWidth(1).FillOpacity(10).ShowPoints(common.VisibilityModeNever).
		SpanNulls(common.BoolOrFloat64{Bool: cog.ToPtr(false)}).
		Thresholds(thresholds("green")).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).ShowLegend(true).Calcs([]string{"lastNotNull", "max"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
}

// dashedObjective draws series whose name ends in "objective" as a dashed
// red line, so exposure and estimates read against it.
func dashedObjective(p *timeseries.PanelBuilder) *timeseries.PanelBuilder {
	return p.OverrideByRegexp(".*objective$", []dashboard.DynamicConfigValue{
		{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
		{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}},
		{Id: "custom.fillOpacity", Value: 0},
	})
}

// statPanel is a single-value panel colored by thresholds.
func statPanel(title, description, unit string, th *dashboard.ThresholdsConfigBuilder, qs ...*prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).Targets(targets(qs)).
		ColorScheme(colors(dashboard.FieldColorModeIdThresholds)).Thresholds(th).
		ReduceOptions(reduceLast()).ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).JustifyMode(common.BigValueJustifyModeAuto).
		Orientation(common.VizOrientationAuto).TextMode(common.BigValueTextModeAuto).WideLayout(true)
}

// gaugePanel is a gauge between minV and maxV colored by thresholds.
func gaugePanel(title, description, unit string, minV, maxV float64, th *dashboard.ThresholdsConfigBuilder, qs ...*prometheus.DataqueryBuilder) *gauge.PanelBuilder {
	return gauge.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).Min(minV).Max(maxV).Targets(targets(qs)).
		ColorScheme(colors(dashboard.FieldColorModeIdThresholds)).Thresholds(th).
		ReduceOptions(reduceLast()).ShowThresholdLabels(false).ShowThresholdMarkers(true).
		Orientation(common.VizOrientationAuto)
}

// bargaugePanel is a horizontal bar per series colored by thresholds.
func bargaugePanel(title, description, unit string, th *dashboard.ThresholdsConfigBuilder, qs ...*prometheus.DataqueryBuilder) *bargauge.PanelBuilder {
	return bargauge.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).Min(0).Targets(targets(qs)).
		ColorScheme(colors(dashboard.FieldColorModeIdThresholds)).Thresholds(th).
		ReduceOptions(reduceLast()).DisplayMode(common.BarGaugeDisplayModeGradient).
		Orientation(common.VizOrientationHorizontal).ShowUnfilled(true).ValueMode(common.BarGaugeValueModeColor).
		NamePlacement(common.BarGaugeNamePlacementAuto).Sizing(common.BarGaugeSizingAuto)
}

// stateTimelinePanel shows 0/1 series as bad/good bands.
func stateTimelinePanel(title, description, bad, good string, qs ...*prometheus.DataqueryBuilder) *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Title(title).Description(description).Targets(targets(qs)).
		ColorScheme(colors(dashboard.FieldColorModeIdThresholds)).Thresholds(thresholds("red", 1, "green")).
		Mappings([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText,
			Options: map[string]dashboard.ValueMappingResult{
				"0": {Text: cog.ToPtr(bad), Color: cog.ToPtr("red"), Index: cog.ToPtr[int32](0)},
				"1": {Text: cog.ToPtr(good), Color: cog.ToPtr("green"), Index: cog.ToPtr[int32](1)},
			}}}}).
		MergeValues(true).ShowValue(common.VisibilityModeAuto).AlignValue(common.TimelineValueAlignmentLeft).RowHeight(0.9).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).ShowLegend(false)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeSingle).Sort(common.SortOrderNone))
}

// datasourceVar lets the viewer pick any Prometheus data source.
func datasourceVar() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")
}

// labelVar is a multi-value variable over the values of label in query's
// series, "All" meaning any value (including none).
func labelVar(name, label, metric string) *dashboard.QueryVariableBuilder {
	def := fmt.Sprintf("label_values(%s, %s)", metric, name)
	return dashboard.NewQueryVariableBuilder(name).Label(label).
		Datasource(promDS).Definition(def).
		Query(dashboard.StringOrMap{Map: map[string]any{"qryType": 1, "query": def, "refId": "PrometheusVariableQueryEditor-VariableQuery"}}).
		Current(dashboard.VariableOption{Selected: cog.ToPtr(true),
			Text: dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}}, Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}}}).
		Multi(true).IncludeAll(true).AllValue(".*").
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc)
}

var (
	serviceVar = labelVar("service", "Service", `{__name__=~"drguard_.+"}`)
	targetVar  = labelVar("target", "Target", `{__name__=~"drguard_.+"}`)
	probeVar   = labelVar("probe", "Probe", `drguard_probe_success{service=~"$service"}`)
)

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/fruitfulplanet/drguard/dashboards"
	"github.com/fruitfulplanet/drguard/rules"
)

var (
	// drguardName matches a drguard metric name that is not part of a
	// recording rule's name (level:metric:operations).
	drguardName = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])(drguard_[a-zA-Z0-9_]+)`)
	// otherNames are the metrics the rules use that drguard does not
	// prefix: its process collector's start time (up is Prometheus's own).
	otherNames = regexp.MustCompile(`\b(process_start_time_seconds)\b`)
)

// namesIn returns the metric names an expression refers to.
func namesIn(expr string) []string {
	var out []string
	for _, m := range drguardName.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	for _, m := range otherNames.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	return out
}

// ruleExprs returns every rule's expression by rule name.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	groups, err := rules.Groups()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range groups {
		for _, r := range g.Rules {
			out[r.Alert+r.Record] = r.Expr
		}
	}
	return out
}

// panelQuery is one query of a committed dashboard.
type panelQuery struct {
	Dashboard, Panel, RefID, Expr string
}

// dashboardQueries reads the committed dashboard JSON files and returns
// every panel query and every query variable's definition.
func dashboardQueries(t *testing.T) (queries []panelQuery, variables []panelQuery) {
	t.Helper()
	files, err := filepath.Glob("../../dashboards/*.json")
	if err != nil || len(files) != len(dashboards.Files) {
		t.Fatalf("dashboard files %v (%v), want %d", files, err, len(dashboards.Files))
	}
	sort.Strings(files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := dashboards.Load(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, q := range dashboards.Queries(d) {
			queries = append(queries, panelQuery{filepath.Base(f), q.Panel, *q.RefId, q.Expr})
		}
		for _, v := range d.Templating.List {
			if v.Type == dashboard.VariableTypeQuery && v.Definition != nil {
				variables = append(variables, panelQuery{filepath.Base(f), "$" + v.Name, "", *v.Definition})
			}
		}
	}
	if len(queries) == 0 {
		t.Fatal("no dashboard queries")
	}
	return queries, variables
}

// usedNames returns every metric name the rules and dashboards use, with
// where each is used.
func usedNames(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	for name, expr := range ruleExprs(t) {
		for _, n := range namesIn(expr) {
			used[n] = append(used[n], "rule "+name)
		}
	}
	queries, variables := dashboardQueries(t)
	for _, q := range append(queries, variables...) {
		for _, n := range namesIn(q.Expr) {
			used[n] = append(used[n], q.Dashboard+": "+q.Panel)
		}
	}
	return used
}

package dashboards

//lint:file-ignore SA1019 the classic dashboard model (schema v1) is the JSON every Grafana since 10.4 imports; the SDK deprecates it for dashboardv2, which only Grafana 12 reads.

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/fruitfulplanet/drguard/rules"
)

// build builds a dashboard or fails the test.
func build(t *testing.T, name string) dashboard.Dashboard {
	t.Helper()
	d, err := Files[name]()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// TestCommittedJSONUpToDate fails while a committed dashboard differs from
// what the Go source builds: run `go run ./dashboards/gen`.
func TestCommittedJSONUpToDate(t *testing.T) {
	for name := range Files {
		want, err := JSON(build(t, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s: %v (run go run ./dashboards/gen)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go run ./dashboards/gen", name)
		}
	}
}

// TestDashboardConventions reads the committed JSON into the SDK's model,
// as Grafana would, and checks what every drguard dashboard must have.
func TestDashboardConventions(t *testing.T) {
	uids := map[string]bool{}
	for name := range Files {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Load(raw)
			if err != nil {
				t.Fatal(err)
			}
			if d.SchemaVersion < 39 {
				t.Errorf("schemaVersion %d, want 39 or later", d.SchemaVersion)
			}
			uid := deref(d.Uid)
			if uid == "" || uids[uid] {
				t.Errorf("uid %q empty or not unique", uid)
			}
			uids[uid] = true
			vars := map[string]dashboard.VariableModel{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			if v, ok := vars["datasource"]; !ok || v.Type != dashboard.VariableTypeDatasource || v.Query == nil || deref(v.Query.String) != "prometheus" {
				t.Error("no Prometheus datasource variable")
			}
			for _, n := range []string{"service", "target"} {
				v, ok := vars[n]
				if !ok || v.IncludeAll == nil || !*v.IncludeAll || deref(v.AllValue) != ".*" || !usesDatasourceVar(v.Datasource) {
					t.Errorf("no %s variable with All = .* on ${datasource}", n)
				}
			}
			checkPanels(t, d)
		})
	}
}

// usesDatasourceVar reports whether ref is the datasource variable.
func usesDatasourceVar(ref *common.DataSourceRef) bool {
	return ref != nil && deref(ref.Uid) == "${datasource}"
}

func checkPanels(t *testing.T, d dashboard.Dashboard) {
	t.Helper()
	ids := map[uint32]bool{}
	type cell struct{ x, y uint32 }
	used := map[cell]string{}
	for _, p := range d.Panels {
		var id *uint32
		var title string
		var g *dashboard.GridPos
		if r := p.RowPanel; r != nil {
			id, title, g = &r.Id, deref(r.Title), r.GridPos
		} else {
			id, title, g = p.Panel.Id, deref(p.Panel.Title), p.Panel.GridPos
		}
		if id == nil || ids[*id] {
			t.Errorf("panel %q: id missing or used twice", title)
		} else {
			ids[*id] = true
		}
		if g == nil || g.W == 0 || g.H == 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", title, g)
			continue
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", other, title)
				}
				used[cell{x, y}] = title
			}
		}
	}
	queries, targets := Queries(d), 0
	for _, p := range Panels(d) {
		targets += len(p.Targets)
		title := deref(p.Title)
		if !usesDatasourceVar(p.Datasource) {
			t.Errorf("panel %q does not use the datasource variable", title)
		}
		if deref(p.Description) == "" {
			t.Errorf("panel %q has no description", title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", title)
		}
	}
	if len(queries) == 0 {
		t.Error("no panel query read")
	}
	if len(queries) != targets {
		t.Errorf("%d of %d queries are PromQL, want all", len(queries), targets)
	}
	for _, q := range queries {
		if strings.TrimSpace(q.Expr) == "" || !usesDatasourceVar(q.Datasource) {
			t.Errorf("panel %q: query %s has no expression or data source", q.Panel, deref(q.RefId))
		}
	}
}

// TestRecordingRulesExist checks that every recording rule a panel reads is
// defined in rules/.
func TestRecordingRulesExist(t *testing.T) {
	groups, err := rules.Groups()
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, g := range groups {
		for _, r := range g.Rules {
			recorded[r.Record] = true
		}
	}
	re := regexp.MustCompile(`[a-z_]+:drguard_[a-z0-9_]+:[a-z_]+`)
	n := 0
	for name := range Files {
		for _, q := range Queries(build(t, name)) {
			for _, rec := range re.FindAllString(q.Expr, -1) {
				n++
				if !recorded[rec] {
					t.Errorf("%s: panel %q reads %s, which rules/ does not record", name, q.Panel, rec)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no panel uses a recording rule")
	}
}

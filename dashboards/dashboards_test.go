package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/fruitfulplanet/drguard/rules"
)

// TestCommittedJSONUpToDate fails while a committed dashboard differs from
// what the Go source builds: run `go run ./dashboards/gen`.
func TestCommittedJSONUpToDate(t *testing.T) {
	for name, build := range Files {
		want, err := build().JSON()
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

// TestDashboardConventions reads the committed JSON as Grafana would and
// checks what every drguard dashboard must have.
func TestDashboardConventions(t *testing.T) {
	uids := map[string]bool{}
	for name := range Files {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var d Dashboard
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			if d.SchemaVersion < 39 {
				t.Errorf("schemaVersion %d, want 39 or later", d.SchemaVersion)
			}
			if d.UID == "" || uids[d.UID] {
				t.Errorf("uid %q empty or not unique", d.UID)
			}
			uids[d.UID] = true
			vars := map[string]Variable{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.Query != "prometheus" {
				t.Error("no Prometheus datasource variable")
			}
			for _, n := range []string{"service", "target"} {
				if v, ok := vars[n]; !ok || !v.IncludeAll || v.AllValue != ".*" || v.Datasource == nil || v.Datasource.UID != "${datasource}" {
					t.Errorf("no %s variable with All = .* on ${datasource}", n)
				}
			}
			checkPanels(t, d.Panels)
		})
	}
}

func checkPanels(t *testing.T, panels []*Panel) {
	t.Helper()
	ids := map[int]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", other, p.Title)
				}
				used[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if p.Description == "" {
			t.Errorf("panel %q has no description", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: query %s has no expression or data source", p.Title, tg.RefID)
			}
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
	for name, build := range Files {
		for _, p := range build().Panels {
			for _, tg := range p.Targets {
				for _, rec := range re.FindAllString(tg.Expr, -1) {
					n++
					if !recorded[rec] {
						t.Errorf("%s: panel %q reads %s, which rules/ does not record", name, p.Title, rec)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no panel uses a recording rule")
	}
}

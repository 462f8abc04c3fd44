package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/rules"
)

// promScraping starts Prometheus scraping d every second as job "drguard"
// (honor_labels, as the ServiceMonitor does) with the rule files of rules/,
// and waits until it has scraped at least `scrapes` times.
func promScraping(t *testing.T, d *drguard, scrapes int, extraConfig string) *testharness.Prom {
	t.Helper()
	var files []string
	for _, f := range rules.Files() {
		files = append(files, filepath.Join("..", "..", "rules", f))
	}
	cfg := fmt.Sprintf(`
scrape_configs:
  - job_name: drguard
    honor_labels: true
    scrape_interval: 1s
    static_configs:
      - targets: [%q]
%s`, d.Addr, extraConfig)
	p := testharness.Prometheus(t, cfg, files...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		r, err := p.Query(ctx, `count_over_time(up{job="drguard"}[5m])`)
		if err == nil {
			if s, _ := r.Samples(); len(s) == 1 && s[0].Value >= float64(scrapes) {
				return p
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("prometheus did not scrape drguard %d times: %v", scrapes, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// substitute replaces Grafana's variables in a query.
func substitute(expr string, vars map[string]string) string {
	pairs := []string{"$__rate_interval", "1m", "$__range", "5m", "$__interval", "1s"}
	for k, v := range vars {
		pairs = append(pairs, "$"+k, v, "${"+k+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(expr)
}

// sourceNames resolves recording-rule names in expr to the drguard metrics
// they are computed from.
func sourceNames(expr string, recorded map[string]string) []string {
	names := namesIn(expr)
	for rec, recExpr := range recorded {
		if strings.Contains(expr, rec) {
			names = append(names, sourceNames(recExpr, recorded)...)
		}
	}
	return names
}

// TestDashboardQueries runs every panel query of the committed dashboards
// against a real Prometheus that scrapes a running drguard and evaluates
// rules/. With the variables at "All" every query must succeed, and return
// data whenever drguard exports every metric it is computed from; with the
// variables set to single values taken from Prometheus every query must
// still succeed. Each query variable must list at least one value.
func TestDashboardQueries(t *testing.T) {
	s := startScenario(t, scenarioOptions{policies: testPolicies, backupInterval: 5 * time.Second})
	exercise(t, s)
	s.waitProbesRan(t)
	s.waitBackupAndRestoreTest(t, time.Minute)
	p := promScraping(t, s.drguard, 8, "")
	exported := sampleNames(families(t, s.scrape(t)))
	recorded := map[string]string{}
	for name, expr := range ruleExprs(t) {
		if strings.Contains(name, ":") {
			recorded[name] = expr
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	time.Sleep(2 * time.Second) // two rule evaluations after the scrapes

	queries, variables := dashboardQueries(t)
	values := map[string]string{}
	for _, v := range variables {
		name := strings.TrimPrefix(v.Panel, "$")
		vals := labelValues(t, ctx, p, name, substitute(v.Expr, map[string]string{"service": ".*", "target": ".*", "probe": ".*"}))
		if len(vals) == 0 {
			t.Errorf("%s: variable %s (%s) lists no value", v.Dashboard, v.Panel, v.Expr)
			continue
		}
		values[name] = vals[0]
	}
	all := map[string]string{"service": ".*", "target": ".*", "probe": ".*"}
	var withData, empty int
	for _, q := range queries {
		name := fmt.Sprintf("%s/%s/%s", q.Dashboard, q.Panel, q.RefID)
		expr := substitute(q.Expr, all)
		r, err := p.Query(ctx, expr)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		samples, err := r.Samples()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var missing []string
		for _, n := range sourceNames(q.Expr, recorded) {
			if !exported[n] {
				missing = append(missing, n)
			}
		}
		switch {
		case len(samples) > 0:
			withData++
		case len(missing) == 0:
			t.Errorf("%s: no data although drguard exports every metric it uses: %s", name, expr)
		default:
			empty++
			t.Logf("%s: no data; drguard does not export %v", name, missing)
		}
		if _, err := p.Query(ctx, substitute(q.Expr, values)); err != nil {
			t.Errorf("%s with %v: %v", name, values, err)
		}
	}
	t.Logf("%d dashboard queries: %d with data, %d without (metrics not exported)", len(queries), withData, empty)
	checkRuleHealth(t, ctx, p)
}

// checkRuleHealth fails for every rule that Prometheus could not evaluate
// against drguard's real series (e.g. many-to-many matching).
func checkRuleHealth(t *testing.T, ctx context.Context, p *testharness.Prom) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/rules", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range answer.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q: %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if n == 0 {
		t.Error("Prometheus loaded no rules")
	}
	t.Logf("%d rules evaluated without error", n)
}

// labelValues asks Prometheus for the values of label on the series that
// match selector, as Grafana's label_values(selector, label) does.
func labelValues(t *testing.T, ctx context.Context, p *testharness.Prom, label, def string) []string {
	t.Helper()
	selector := strings.TrimSuffix(strings.TrimPrefix(def, "label_values("), ", "+label+")")
	u := fmt.Sprintf("%s/api/v1/label/%s/values?match[]=%s", p.URL, label, url.QueryEscape(selector))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	defer resp.Body.Close()
	var answer struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.Status != "success" {
		t.Errorf("label values %s of %s: %v %s", label, selector, err, answer.Error)
	}
	return answer.Data
}

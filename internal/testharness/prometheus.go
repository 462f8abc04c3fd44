package testharness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Prom is a Prometheus server.
type Prom struct {
	// URL is the base URL of the Prometheus API.
	URL string
	// ConfigPath is the prometheus.yml it runs with.
	ConfigPath string

	t testing.TB
}

// Prometheus starts prometheus on a free port with storage in a temporary
// directory and --web.enable-lifecycle. configYAML is a prometheus.yml
// (may be empty); global scrape and evaluation intervals default to 1s.
// Each ruleFile is a path to a rule file, or the rules themselves when it
// contains a newline; they are added to rule_files. It is stopped in t.Cleanup.
// Prometheus 2.42 waits ~5 s before its first scrape.
func Prometheus(t testing.TB, configYAML string, ruleFiles ...string) *Prom {
	t.Helper()
	bin, err := findBinary("prometheus", "/usr/bin/prometheus")
	if err != nil {
		Need(t, "prometheus (apt-get install prometheus)", err)
	}
	dir := t.TempDir()
	config := map[string]any{}
	if err := yaml.Unmarshal([]byte(configYAML), &config); err != nil {
		t.Fatalf("testharness: prometheus config: %v", err)
	}
	if config == nil {
		config = map[string]any{}
	}
	global, _ := config["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
	}
	for _, k := range []string{"scrape_interval", "evaluation_interval"} {
		if _, ok := global[k]; !ok {
			global[k] = "1s"
		}
	}
	config["global"] = global
	rules, _ := config["rule_files"].([]any)
	for i, rf := range ruleFiles {
		path := rf
		if strings.Contains(rf, "\n") {
			path = filepath.Join(dir, fmt.Sprintf("rules-%d.yml", i))
			if err := os.WriteFile(path, []byte(rf), 0o644); err != nil {
				t.Fatalf("testharness: %v", err)
			}
		} else if path, err = filepath.Abs(rf); err != nil {
			t.Fatalf("testharness: %v", err)
		}
		rules = append(rules, path)
	}
	if len(rules) > 0 {
		config["rule_files"] = rules
	}
	b, err := yaml.Marshal(config)
	if err != nil {
		t.Fatalf("testharness: %v", err)
	}
	p := &Prom{ConfigPath: filepath.Join(dir, "prometheus.yml"), t: t}
	p.URL = startWebComponent(t, "prometheus", bin, dir, p.ConfigPath, b, func(port int) []string {
		return []string{
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			"--web.enable-lifecycle",
			"--web.enable-admin-api",
		}
	})
	return p
}

// QueryResult is the data of a Prometheus query answer.
type QueryResult struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// Sample is one value of a vector or scalar query result.
type Sample struct {
	Metric map[string]string
	Value  float64
	Time   time.Time
}

// Samples decodes a vector or scalar result.
func (r *QueryResult) Samples() ([]Sample, error) {
	decodeValue := func(v [2]any) (float64, time.Time, error) {
		ts, _ := v[0].(float64)
		s, _ := v[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		return f, time.UnixMilli(int64(ts * 1000)), err
	}
	switch r.ResultType {
	case "vector":
		var raw []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Result, &raw); err != nil {
			return nil, err
		}
		out := make([]Sample, len(raw))
		for i, s := range raw {
			v, ts, err := decodeValue(s.Value)
			if err != nil {
				return nil, err
			}
			out[i] = Sample{Metric: s.Metric, Value: v, Time: ts}
		}
		return out, nil
	case "scalar":
		var raw [2]any
		if err := json.Unmarshal(r.Result, &raw); err != nil {
			return nil, err
		}
		v, ts, err := decodeValue(raw)
		return []Sample{{Value: v, Time: ts}}, err
	}
	return nil, fmt.Errorf("result type %q is not a vector or scalar", r.ResultType)
}

// Query runs an instant query (GET /api/v1/query) and returns its data.
func (p *Prom) Query(ctx context.Context, expr string) (*QueryResult, error) {
	var answer struct {
		Status string      `json:"status"`
		Error  string      `json:"error"`
		Data   QueryResult `json:"data"`
	}
	if err := getJSON(ctx, p.URL+"/api/v1/query?query="+url.QueryEscape(expr), &answer); err != nil {
		return nil, err
	}
	if answer.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, answer.Error)
	}
	return &answer.Data, nil
}

// PromAlert is an alert as Prometheus reports it on /api/v1/alerts.
type PromAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// WaitForAlert polls /api/v1/alerts until an alert named name is firing, and
// returns it, or fails when ctx ends.
func (p *Prom) WaitForAlert(ctx context.Context, name string) (*PromAlert, error) {
	var last []PromAlert
	for {
		var answer struct {
			Data struct {
				Alerts []PromAlert `json:"alerts"`
			} `json:"data"`
		}
		if err := getJSON(ctx, p.URL+"/api/v1/alerts", &answer); err == nil {
			last = answer.Data.Alerts
			for _, a := range last {
				if a.Labels["alertname"] == name && a.State == "firing" {
					return &a, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("alert %s not firing: %w (alerts: %v)", name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Reload makes Prometheus re-read its configuration and rule files.
func (p *Prom) Reload(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/-/reload", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload: %s", resp.Status)
	}
	return nil
}

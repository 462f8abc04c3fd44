package rules

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// promtool returns the path of promtool, or skips (fails under CI=true).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		testharness.Need(t, "promtool (apt-get install prometheus)", err)
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, append([]string{"check", "rules"}, Files()...)...)
}

func TestPromtoolTestRules(t *testing.T) {
	tests, err := filepath.Glob("tests/*.test.yml")
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule tests found: %v", err)
	}
	runPromtool(t, append([]string{"test", "rules"}, tests...)...)
}

// unitTests reads every promtool test file: for each alert name, whether
// some case expects it firing and some case expects it silent.
func unitTests(t *testing.T) (firing, silent map[string]bool) {
	t.Helper()
	firing, silent = map[string]bool{}, map[string]bool{}
	files, _ := filepath.Glob("tests/*.test.yml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range doc.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	return firing, silent
}

func alerts(t *testing.T) []Rule {
	t.Helper()
	groups, err := Groups()
	if err != nil {
		t.Fatal(err)
	}
	var out []Rule
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no alerting rules")
	}
	return out
}

// TestEveryAlertTestedFiringAndSilent makes sure each alert has a promtool
// case where it fires and one where it must not.
func TestEveryAlertTestedFiringAndSilent(t *testing.T) {
	firing, silent := unitTests(t)
	names := map[string]bool{}
	for _, r := range alerts(t) {
		names[r.Alert] = true
		if !firing[r.Alert] {
			t.Errorf("%s: no promtool case where it fires", r.Alert)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no promtool case where it stays silent", r.Alert)
		}
	}
	for n := range firing {
		if !names[n] {
			t.Errorf("tests name alert %s, which no rule defines", n)
		}
	}
}

// camel is the alerts' naming convention; the drill alerts keep the names
// their contract gave them (DRGuardDrill…).
var camel = regexp.MustCompile(`^(Drguard|DRGuardDrill)[A-Z][A-Za-z0-9]+$`)

// TestAlertConventions checks names, labels and annotations of every alert,
// and that docs/operations.md documents each one under its own heading
// (the runbook_url anchor).
func TestAlertConventions(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatalf("the runbooks live in docs/operations.md: %v", err)
	}
	seen := map[string]bool{}
	for _, r := range alerts(t) {
		t.Run(r.Alert, func(t *testing.T) {
			if !camel.MatchString(r.Alert) {
				t.Errorf("alert name %q is not DrguardCamelCase", r.Alert)
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning"}, s) {
				t.Errorf("severity %q, want critical or warning", s)
			}
			if r.Labels["scenario"] == "" {
				t.Error("no scenario label")
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("no %s annotation", k)
				}
			}
			anchor := "#" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "docs/operations.md"+anchor) {
				t.Errorf("runbook_url %q does not point at docs/operations.md%s", r.Annotations["runbook_url"], anchor)
			}
			if !strings.Contains(string(doc), "\n### "+r.Alert+"\n") {
				t.Errorf("docs/operations.md has no '### %s' section", r.Alert)
			}
		})
	}
}

// TestRecordingRuleNames checks the level:metric:operations convention.
func TestRecordingRuleNames(t *testing.T) {
	groups, err := Groups()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^[a-z_]+:drguard_[a-z_]+:[a-z_]+$`)
	n := 0
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			n++
			if !re.MatchString(r.Record) {
				t.Errorf("recording rule %q does not follow level:metric:operations", r.Record)
			}
		}
	}
	if n == 0 {
		t.Fatal("no recording rules")
	}
}

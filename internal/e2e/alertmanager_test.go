package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// receiverConfig builds an alertmanager.yml from the shipped snippet
// deploy/alertmanager/receiver.yaml as docs/operations.md says to merge it:
// a top-level route to a "people" receiver with the snippet's routes first,
// and the snippet's receivers. Only the webhook URL and the paths of the
// token file and of the CA file change. The shipped URL is https with a
// tls_config; the drguard of these tests serves plain HTTP, so the test
// CA is there only for Alertmanager to load (internal/app's
// TestRealAlertmanagerDeliversOverTLS delivers over TLS).
func receiverConfig(t *testing.T, webhookURL, tokenFile string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/alertmanager/receiver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var snippet struct {
		Route struct {
			Routes []map[string]any `yaml:"routes"`
		} `yaml:"route"`
		Receivers []map[string]any `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(raw, &snippet); err != nil {
		t.Fatalf("receiver.yaml: %v", err)
	}
	if len(snippet.Route.Routes) == 0 || len(snippet.Receivers) != 1 {
		t.Fatalf("receiver.yaml: want routes and one receiver, got %+v", snippet)
	}
	hooks, _ := snippet.Receivers[0]["webhook_configs"].([]any)
	if len(hooks) != 1 {
		t.Fatalf("receiver.yaml: want one webhook_config, got %v", hooks)
	}
	hook := hooks[0].(map[string]any)
	auth := hook["http_config"].(map[string]any)["authorization"].(map[string]any)
	if hook["send_resolved"] != true || hook["max_alerts"] == nil || auth["type"] != "Bearer" || auth["credentials_file"] == nil {
		t.Fatalf("receiver.yaml: webhook config %v lacks send_resolved, max_alerts or a bearer credentials_file", hook)
	}
	tlsConfig, _ := hook["http_config"].(map[string]any)["tls_config"].(map[string]any)
	if !strings.HasPrefix(hook["url"].(string), "https://") || tlsConfig["ca_file"] == nil {
		t.Fatalf("receiver.yaml: webhook config %v does not use https with a tls_config ca_file", hook)
	}
	hook["url"] = webhookURL
	auth["credentials_file"] = tokenFile
	tlsConfig["ca_file"] = testharness.NewPKI(t).CAFile
	tlsConfig["server_name"] = "localhost"
	out, err := yaml.Marshal(map[string]any{
		"route":     map[string]any{"receiver": "people", "routes": snippet.Route.Routes},
		"receivers": append([]map[string]any{{"name": "people"}}, snippet.Receivers...),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// alertmanagerWith starts prometheus-alertmanager with config, after
// `amtool check-config` accepts it, and returns its host:port.
func alertmanagerWith(t *testing.T, config []byte) string {
	t.Helper()
	if amtool, err := exec.LookPath("amtool"); err == nil {
		path := filepath.Join(t.TempDir(), "alertmanager.yml")
		if err := os.WriteFile(path, config, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
			t.Fatalf("amtool check-config: %v\n%s\n%s", err, out, config)
		}
	}
	return strings.TrimPrefix(testharness.AlertmanagerWithConfig(t, config).URL, "http://")
}

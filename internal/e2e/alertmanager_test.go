package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// receiverConfig builds an alertmanager.yml from the shipped snippet
// deploy/alertmanager/receiver.yaml as docs/operations.md says to merge it:
// a top-level route to a "people" receiver with the snippet's routes first,
// and the snippet's receivers. Only the webhook URL and the token file's
// path change.
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
	hook["url"] = webhookURL
	auth["credentials_file"] = tokenFile
	out, err := yaml.Marshal(map[string]any{
		"route":     map[string]any{"receiver": "people", "routes": snippet.Route.Routes},
		"receivers": append([]map[string]any{{"name": "people"}}, snippet.Receivers...),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// alertmanagerWith writes config and starts prometheus-alertmanager with it
// on a free port, after `amtool check-config` accepts it. It returns the
// host:port. It is stopped when the test ends.
func alertmanagerWith(t *testing.T, config []byte) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		testharness.Need(t, "prometheus-alertmanager (apt-get install prometheus-alertmanager)", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(path, config, 0o600); err != nil {
		t.Fatal(err)
	}
	if amtool, err := exec.LookPath("amtool"); err == nil {
		if out, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
			t.Fatalf("amtool check-config: %v\n%s\n%s", err, out, config)
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(testharness.FreePort(t))
	logPath := filepath.Join(dir, "alertmanager.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+path, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("alertmanager log:\n%s", tail(string(b), 4000))
		}
	})
	waitFor(t, 30*time.Second, "alertmanager to be ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("…%s", s[len(s)-n:])
}

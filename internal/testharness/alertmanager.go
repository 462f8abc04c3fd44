package testharness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// AM is a prometheus-alertmanager whose only route sends every alert to one
// webhook receiver.
type AM struct {
	// URL is the base URL of the Alertmanager API and UI.
	URL string
	// ConfigPath is the generated alertmanager.yml.
	ConfigPath string

	t testing.TB
}

// AMOption changes the Alertmanager route.
type AMOption func(*amOptions)

type amOptions struct {
	groupWait, groupInterval, repeatInterval time.Duration
	groupBy                                  []string
	tlsConfig                                map[string]any
}

// AMGroupWait sets the route's group_wait (default 0s).
func AMGroupWait(d time.Duration) AMOption { return func(o *amOptions) { o.groupWait = d } }

// AMGroupInterval sets the route's group_interval (default 1s): how soon
// changes to a group (new or resolved alerts) are sent.
func AMGroupInterval(d time.Duration) AMOption { return func(o *amOptions) { o.groupInterval = d } }

// AMRepeatInterval sets the route's repeat_interval (default 1h); e.g. 1s
// with AMGroupInterval(1s) makes Alertmanager re-send a group every second.
func AMRepeatInterval(d time.Duration) AMOption { return func(o *amOptions) { o.repeatInterval = d } }

// AMGroupBy sets the route's group_by labels (default: none, one group).
func AMGroupBy(labels ...string) AMOption { return func(o *amOptions) { o.groupBy = labels } }

// AMTLS makes Alertmanager verify the webhook's certificate against the CA
// in caFile and, when certFile is not empty, present the client certificate
// certFile with its key keyFile (http_config.tls_config).
func AMTLS(caFile, certFile, keyFile string) AMOption {
	return func(o *amOptions) {
		o.tlsConfig = map[string]any{"ca_file": caFile}
		if certFile != "" {
			o.tlsConfig["cert_file"], o.tlsConfig["key_file"] = certFile, keyFile
		}
	}
}

// Alert is an alert as posted to and read from Alertmanager's v2 API.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	// Fingerprint and Status are only set on alerts read with Alerts.
	Fingerprint string `json:"fingerprint,omitempty"`
	Status      *struct {
		State string `json:"state"`
	} `json:"status,omitempty"`
}

// Alertmanager starts prometheus-alertmanager on a free port, routing every
// alert to webhookURL with send_resolved and, when bearerToken is not empty,
// an Authorization: Bearer header. Clustering is off. It is stopped in t.Cleanup.
func Alertmanager(t testing.TB, webhookURL, bearerToken string, opts ...AMOption) *AM {
	t.Helper()
	o := amOptions{groupInterval: time.Second, repeatInterval: time.Hour}
	for _, opt := range opts {
		opt(&o)
	}
	webhook := map[string]any{"url": webhookURL, "send_resolved": true}
	httpConfig := map[string]any{}
	if bearerToken != "" {
		httpConfig["authorization"] = map[string]any{"type": "Bearer", "credentials": bearerToken}
	}
	if o.tlsConfig != nil {
		httpConfig["tls_config"] = o.tlsConfig
	}
	if len(httpConfig) > 0 {
		webhook["http_config"] = httpConfig
	}
	route := map[string]any{
		"receiver":        "webhook",
		"group_wait":      promDuration(o.groupWait),
		"group_interval":  promDuration(o.groupInterval),
		"repeat_interval": promDuration(o.repeatInterval),
	}
	if len(o.groupBy) > 0 {
		route["group_by"] = o.groupBy
	}
	config := map[string]any{
		"route":     route,
		"receivers": []any{map[string]any{"name": "webhook", "webhook_configs": []any{webhook}}},
	}
	b, _ := json.MarshalIndent(config, "", "  ") // JSON is YAML
	return AlertmanagerWithConfig(t, b)
}

// AlertmanagerWithConfig starts prometheus-alertmanager on a free port with
// config (alertmanager.yml as given). Clustering is off. It is stopped in
// t.Cleanup.
func AlertmanagerWithConfig(t testing.TB, config []byte) *AM {
	t.Helper()
	bin, err := findBinary("prometheus-alertmanager", "alertmanager", "/usr/bin/prometheus-alertmanager")
	if err != nil {
		Need(t, "prometheus-alertmanager (apt-get install prometheus-alertmanager)", err)
	}
	dir := t.TempDir()
	am := &AM{ConfigPath: filepath.Join(dir, "alertmanager.yml"), t: t}
	am.URL = startWebComponent(t, "alertmanager", bin, dir, am.ConfigPath, config, func(port int) []string {
		return []string{
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			"--cluster.listen-address=",
			"--log.level=debug",
		}
	})
	return am
}

// PostAlerts posts alerts to POST /api/v2/alerts.
func (am *AM) PostAlerts(ctx context.Context, alerts []Alert) error {
	b, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, am.URL+"/api/v2/alerts", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /api/v2/alerts: %s: %s", resp.Status, body)
	}
	return nil
}

// ResolveAlerts posts the same alerts with endsAt set to now, which resolves them.
func (am *AM) ResolveAlerts(ctx context.Context, alerts []Alert) error {
	now := time.Now()
	resolved := make([]Alert, len(alerts))
	for i, a := range alerts {
		a.EndsAt = now
		a.Fingerprint, a.Status = "", nil
		resolved[i] = a
	}
	return am.PostAlerts(ctx, resolved)
}

// Alerts returns the alerts Alertmanager holds (GET /api/v2/alerts).
func (am *AM) Alerts(ctx context.Context) ([]Alert, error) {
	var alerts []Alert
	err := getJSON(ctx, am.URL+"/api/v2/alerts", &alerts)
	return alerts, err
}

// promDuration formats d the way Prometheus and Alertmanager parse durations.
func promDuration(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// httpReady returns a readiness check that wants 200 from url.
func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// getJSON GETs url and decodes a 200 JSON answer into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

package app

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// paramsBase is a configuration with a target of every kind for the probes
// below to name.
const paramsBase = `auth:
  webhook: {bearer_token: params-check-webhook-token}
targets:
  postgres: [{name: db, dsn: "postgres://u@localhost/db"}]
  redis: [{name: cache, address: "127.0.0.1:6379"}]
  http: [{name: web, url: "http://localhost:8080"}]
  s3: [{name: backups, bucket: b}]
  kubernetes: [{name: k8s, namespace: shop}]
`

// TestCheckParamsFileLine is the acceptance of strict params decoding as
// `drguard check` reports it: for every probe kind and every action, an
// unknown key, and where the kind has one a bad duration or a bad regexp,
// is an error that names the file, the line of the offending key and its
// path.
func TestCheckParamsFileLine(t *testing.T) {
	type tc struct {
		name, params, key, want string
	}
	probes := map[string][]tc{
		"http":                 {{"unknown", "pathh: /x", "pathh", `unknown key (did you mean "path"?)`}, {"regexp", `body_regexp: "("`, "body_regexp", "invalid regular expression"}, {"duration", "max_latency: soon", "max_latency", "is not a duration"}},
		"postgres_ready":       {{"unknown", "rol: primary", "rol", "unknown key"}},
		"postgres_heartbeat":   {{"unknown", "tabel: hb", "tabel", "unknown key"}},
		"postgres_replication": {{"unknown", "max_lag: 5m", "max_lag", "unknown key"}, {"duration", "max_lag_seconds: soon", "max_lag_seconds", "is not a duration"}},
		"postgres_integrity":   {{"unknown", "checkz: []", "checkz", "unknown key"}, {"duration", "statement_timeout: never", "statement_timeout", "is not a duration"}},
		"redis_persistence":    {{"unknown", "max_agee: 1h", "max_agee", "unknown key"}, {"duration", "max_age: old", "max_age", "is not a duration"}},
		"backup_age":           {{"unknown", "max_age: 26h\n      bucket: x", "bucket", "unknown key"}, {"duration", "max_age: yesterday", "max_age", "is not a duration"}},
		"kubernetes_workload":  {{"unknown", "name: app\n      context: dr", "context", "unknown key"}},
	}
	targets := map[string]string{"http": "web", "redis_persistence": "cache", "backup_age": "backups", "kubernetes_workload": "k8s"}
	for _, kind := range probe.Names() {
		cases, ok := probes[kind]
		if !ok {
			t.Errorf("probe kind %s has no case", kind)
			continue
		}
		target := targets[kind]
		if target == "" {
			target = "db"
		}
		for _, c := range cases {
			t.Run("probe/"+kind+"/"+c.name, func(t *testing.T) {
				yml := paramsBase + fmt.Sprintf("probes:\n  - name: p\n    type: %s\n    target: %s\n    params:\n      %s\n", kind, target, c.params)
				checkProblem(t, yml, "probes[0].params."+c.key, c.key+":", c.want)
			})
		}
	}
	actions := map[string][]tc{
		"exec":                             {{"unknown", "argv: [echo]\n          argvs: [x]", "argvs", `did you mean "argv"?`}},
		"http":                             {{"unknown", "url: http://x/\n          timeout: 5s", "timeout", "unknown key"}},
		"kubernetes.delete_pod":            {{"unknown", "name: p\n          force: true", "force", "unknown key"}},
		"kubernetes.scale":                 {{"unknown", "name: app\n          replicas: 1\n          replica: 2", "replica", `did you mean "replicas"?`}},
		"kubernetes.rollout_restart":       {{"unknown", "name: app\n          knd: deployment", "knd", "unknown key"}},
		"kubernetes.patch_secret":          {{"unknown", "name: s\n          values: {a: b}\n          value: c", "value", "unknown key"}},
		"kubernetes.pod_logs":              {{"unknown", "name: p\n          lines: 10", "lines", "unknown key"}},
		"postgres.promote":                 {{"unknown", "force: true\n          maxlag: 5m", "maxlag", "unknown key"}, {"duration", "max_lag: soon", "max_lag", "is not a duration"}},
		"postgres.backup":                  {{"unknown", "bakup: app", "bakup", `did you mean "backup"?`}},
		"aws.rds.promote_read_replica":     {{"unknown", "instance: r\n          retention: 7", "retention", "unknown key"}},
		"aws.rds.restore_to_point_in_time": {{"unknown", "source_instance: a\n          target_instance: b\n          restore_time: latest\n          snapshot: x", "snapshot", "unknown key"}, {"duration", "source_instance: a\n          target_instance: b\n          restore_time: latest\n          margin: lots", "margin", "is not a duration"}},
		"aws.rds.wait_available":           {{"unknown", "instance: r\n          timeout: 5m", "timeout", "unknown key"}, {"duration", "instance: r\n          poll_interval: often", "poll_interval", "is not a duration"}},
		"aws.route53.upsert_record":        {{"unknown", "hosted_zone_id: Z\n          name: n\n          value: v\n          zone: Z", "zone", "unknown key"}, {"duration", "hosted_zone_id: Z\n          name: n\n          value: v\n          poll_interval: often", "poll_interval", "is not a duration"}},
		"notify.slack":                     {{"unknown", "text: hi", "text", "unknown key"}},
		"notify.email":                     {{"unknown", "to: a@b", "to", "unknown key"}},
		"notify.webhook":                   {{"unknown", "url: http://x/", "url", "unknown key"}},
	}
	for _, name := range action.Names() {
		cases, ok := actions[name]
		if !ok {
			t.Errorf("action %s has no case", name)
			continue
		}
		for _, c := range cases {
			t.Run("action/"+name+"/"+c.name, func(t *testing.T) {
				yml := paramsBase + fmt.Sprintf("policies:\n  - name: p\n    matchers: ['alertname=\"X\"']\n    steps:\n      - action: %s\n        params:\n          %s\n", name, c.params)
				checkProblem(t, yml, "policies[0].steps[0].params."+c.key, c.key+":", c.want)
			})
		}
	}
}

// checkProblem parses yml as drguard check does and wants an error at
// path, on the line where marker first appears after "params:", whose
// message contains want.
func checkProblem(t *testing.T, yml, path, marker, want string) {
	t.Helper()
	lines := strings.Split(yml, "\n")
	line, inParams := 0, false
	for i, l := range lines {
		if strings.Contains(l, "params:") {
			inParams = true
		}
		if inParams && strings.HasPrefix(strings.TrimSpace(l), marker) {
			line = i + 1
			break
		}
	}
	_, err := config.Parse([]byte(yml), "drguard.yaml", KnownActions())
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v, want problems", err)
	}
	for _, p := range ps.Errors() {
		if p.Path == path && p.Line == line && p.File == "drguard.yaml" && strings.Contains(p.Message, want) {
			return
		}
	}
	t.Fatalf("want an error at drguard.yaml:%d %s containing %q; got:\n%v", line, path, want, ps)
}

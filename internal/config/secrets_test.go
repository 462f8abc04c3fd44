package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// writeFile writes content into dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEnvExpansionOnlyInSecrets(t *testing.T) {
	t.Setenv("HOOK", "s3cr3t-hook-token-01")
	t.Setenv("PART", "tail")
	t.Setenv("NAME", "expanded")
	c := mustParse(t, `auth:
  webhook:
    bearer_token: ${HOOK}
  users:
    - {name: "${NAME}", role: admin, token: "pre-${PART}-$PART-${PART}"}
storage: {path: "/data/${NAME}"}
policies:
  - name: p
    matchers: ['alertname="${NAME}"']
    steps: [{action: exec, params: {argv: [echo, "${NAME}"]}}]
`)
	if got := c.Auth.Webhook.BearerToken.Reveal(); got != "s3cr3t-hook-token-01" {
		t.Errorf("bearer token = %q", got)
	}
	if got := c.Auth.Users[0].Token.Reveal(); got != "pre-tail-$PART-tail" {
		t.Errorf("token = %q, want only ${PART} expanded", got)
	}
	for name, got := range map[string]string{
		"user name": c.Auth.Users[0].Name,
		"storage":   c.Storage.Path,
		"matcher":   c.Policies[0].Matchers[0],
		"param":     c.Policies[0].Steps[0].Params["argv"].([]any)[1].(string),
	} {
		if !strings.Contains(got, "${NAME}") {
			t.Errorf("%s = %q: the environment must not be expanded outside secrets", name, got)
		}
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("secrets from the environment should not warn: %v", c.Warnings())
	}
}

func TestSecretErrors(t *testing.T) {
	t.Setenv("SET_TOKEN", "hunter2-value")
	t.Setenv("EMPTY_TOKEN", "")
	dir := t.TempDir()
	writeFile(t, dir, "token", "file-secret-value\n")
	writeFile(t, dir, "blank", "\n")
	tests := []struct {
		name, auth string
		want       []string
	}{
		{"missing env var", "bearer_token: ${DRGUARD_TEST_UNSET}",
			[]string{`test.yaml:3: auth.webhook.bearer_token: environment variable DRGUARD_TEST_UNSET is not set`}},
		{"two missing env vars", "bearer_token: ${UNSET_A}:${UNSET_B}",
			[]string{`environment variable UNSET_A is not set`, `environment variable UNSET_B is not set`}},
		{"empty env var", "bearer_token: ${EMPTY_TOKEN}",
			[]string{`environment variable EMPTY_TOKEN is empty`}},
		{"value and file", "{bearer_token: \"${SET_TOKEN}\", bearer_token_file: " + filepath.Join(dir, "token") + "}",
			[]string{`auth.webhook.bearer_token_file: set either bearer_token or bearer_token_file, not both`}},
		{"missing file", "bearer_token_file: " + filepath.Join(dir, "nope"),
			[]string{`auth.webhook.bearer_token_file: file ` + filepath.Join(dir, "nope") + ` does not exist`}},
		{"empty file", "bearer_token_file: " + filepath.Join(dir, "blank"),
			[]string{`file ` + filepath.Join(dir, "blank") + ` is empty`}},
		{"secret in the wrong place", "basic_auth: hunter2-value",
			[]string{`test.yaml:3: auth.webhook.basic_auth: expected a mapping of keys, not a single value`}},
		{"directory", "bearer_token_file: " + dir,
			[]string{`cannot read file ` + dir + `: is a directory`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := "auth:\n  webhook:\n    " + tt.auth + "\n" + minimalPolicy
			ps := parseErr(t, yml, knownExecHTTP())
			wantAll(t, ps.Error(), tt.want...)
			for _, secret := range []string{"hunter2-value", "file-secret-value"} {
				if strings.Contains(ps.Error(), secret) {
					t.Errorf("secret value leaked into:\n%v", ps)
				}
			}
		})
	}
}

func TestSecretFilesRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "secrets/hook", "hook-token-from-file\n")
	writeFile(t, dir, "secrets/pw", "password-from-file\r\n")
	writeFile(t, dir, "secrets/admin", "admin-from-file\n\n") // only one newline is trimmed
	writeFile(t, dir, "secrets/dsn", "postgres://u:dsn-from-file@h/db")
	writeFile(t, dir, "secrets/redis", "redis-from-file")
	writeFile(t, dir, "secrets/key", "key-material")
	cfg := writeFile(t, dir, "drguard.yaml", `auth:
  webhook:
    bearer_token_file: secrets/hook
    basic_auth: {username: am, password_file: secrets/pw}
  users: [{name: admin, role: admin, token_file: secrets/admin}]
targets:
  postgres: [{name: db, service: svc, dsn_file: secrets/dsn}]
  redis: [{name: r, address: 'r:6379', password_file: secrets/redis}]
  s3: [{name: s3, bucket: b}]
backups: [{name: b, target: db, destination: s3, key_file: secrets/key}]
`+minimalPolicy)
	c, err := Load(cfg, knownExecHTTP())
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"bearer token":   {c.Auth.Webhook.BearerToken.Reveal(), "hook-token-from-file"},
		"basic password": {c.Auth.Webhook.BasicAuth.Password.Reveal(), "password-from-file"},
		"user token":     {c.Auth.Users[0].Token.Reveal(), "admin-from-file\n"},
		"dsn":            {c.Targets.Postgres[0].DSN.Reveal(), "postgres://u:dsn-from-file@h/db"},
		"redis password": {c.Targets.Redis[0].Password.Reveal(), "redis-from-file"},
		"token_file":     {c.Auth.Users[0].TokenFile, filepath.Join(dir, "secrets/admin")},
		"key_file":       {c.Backups[0].KeyFile, filepath.Join(dir, "secrets/key")},
	}
	for name, ch := range checks {
		if ch[0] != ch[1] {
			t.Errorf("%s = %q, want %q", name, ch[0], ch[1])
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	secrets := []string{"env-hook-token-0001", "env-admin-token-0001", "file-dsn-password", "file-redis-password", "env-basic-password-01"}
	t.Setenv("HOOK", secrets[0])
	t.Setenv("ADMIN", secrets[1])
	t.Setenv("BASIC", secrets[4])
	dir := t.TempDir()
	writeFile(t, dir, "dsn", "postgres://u:"+secrets[2]+"@h/db\n")
	writeFile(t, dir, "redis", secrets[3]+"\n")
	cfg := writeFile(t, dir, "c.yaml", `auth:
  webhook:
    bearer_token: ${HOOK}
    basic_auth: {username: am, password: "${BASIC}"}
  users: [{name: admin, role: admin, token: "${ADMIN}"}]
targets:
  postgres: [{name: db, dsn_file: dsn}]
  redis: [{name: r, address: 'r:6379', password_file: redis}]
`+minimalPolicy)
	c, err := Load(cfg, knownExecHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Webhook.BearerToken.Reveal() != secrets[0] {
		t.Fatal("the secret was not loaded")
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	ym, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"json": strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(js)),
		"yaml": string(ym),
		"%v":   fmt.Sprintf("%v", c),
		"%+v":  fmt.Sprintf("%+v", *c),
		"%#v":  fmt.Sprintf("%#v", *c),
		"auth": fmt.Sprintf("%+v %+v", c.Auth, *c.Auth.Webhook.BasicAuth),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output contains a secret:\n%s", name, out)
			}
		}
		if !strings.Contains(out, "<secret>") {
			t.Errorf("%s output does not show <secret>:\n%s", name, out)
		}
	}
	if !strings.Contains(outputs["json"], `"bearer_token":"<secret>"`) {
		t.Errorf("json does not use the YAML key names: %s", js)
	}
}

// TestReadSecret resolves SecretRefs the way the configuration's own
// secrets are: ${NAME} from the environment, a relative file against the
// configuration file's directory, read anew each time.
func TestReadSecret(t *testing.T) {
	t.Setenv("DRGUARD_TEST_TOKEN", "env-secret")
	dir := t.TempDir()
	writeFile(t, dir, "token", "file-secret\n")
	c := &Config{File: filepath.Join(dir, "drguard.yaml")}
	tests := []struct {
		name string
		ref  SecretRef
		want string // the secret, or the error
	}{
		{"value", SecretRef{Value: "pre-${DRGUARD_TEST_TOKEN}"}, "pre-env-secret"},
		{"relative file", SecretRef{File: "token"}, "file-secret"},
		{"absolute file", SecretRef{File: filepath.Join(dir, "token")}, "file-secret"},
		{"missing file", SecretRef{File: "nope"}, "file " + filepath.Join(dir, "nope") + " does not exist"},
		{"unset variable", SecretRef{Value: "${DRGUARD_TEST_UNSET}"}, "environment variable DRGUARD_TEST_UNSET is not set"},
		{"both", SecretRef{Value: "x", File: "token"}, "set either a value or a file, not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ReadSecret(tt.ref)
			if err != nil {
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %v, want %q", err, tt.want)
				}
				return
			}
			if got.Reveal() != tt.want {
				t.Errorf("secret = %q, want %q", got.Reveal(), tt.want)
			}
		})
	}
	writeFile(t, dir, "token", "rotated\n")
	if got, err := c.ReadSecret(SecretRef{File: "token"}); err != nil || got.Reveal() != "rotated" {
		t.Errorf("after rotation: %q, %v", got.Reveal(), err)
	}
}

// TestSecretRefPrintsNoSecret shows a SecretRef as <secret>, or as the
// file that holds it, in every output.
func TestSecretRefPrintsNoSecret(t *testing.T) {
	for _, tt := range []struct {
		ref  SecretRef
		want string
	}{
		{SecretRef{Value: "hunter2-value"}, "<secret>"},
		{SecretRef{File: "/run/secrets/t"}, "<secret in /run/secrets/t>"},
	} {
		js, err := json.Marshal(map[string]SecretRef{"k": tt.ref})
		if err != nil {
			t.Fatal(err)
		}
		var buf strings.Builder
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "ref", tt.ref)
		for name, out := range map[string]string{
			"%v": fmt.Sprintf("%v", tt.ref), "%+v": fmt.Sprintf("%+v", tt.ref), "%#v": fmt.Sprintf("%#v", tt.ref),
			"json": strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(js)), "slog": buf.String(),
		} {
			if strings.Contains(out, "hunter2") || !strings.Contains(out, tt.want) {
				t.Errorf("%s = %s, want %s and no secret", name, out, tt.want)
			}
		}
	}
}

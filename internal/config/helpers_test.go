package config

import (
	"strings"
	"testing"
)

// anyParams accepts any params, like a real validator that knows nothing.
func anyParams(map[string]any) error { return nil }

// knownExecHTTP lists the actions that exist today.
func knownExecHTTP() Known {
	return Known{Actions: map[string]func(map[string]any) error{"exec": anyParams, "http": anyParams}}
}

// webhookAuth is a minimal auth section with a literal webhook token.
const webhookAuth = `auth:
  webhook:
    bearer_token: hook-token-0123456789
`

// minimalPolicy is one valid policy.
const minimalPolicy = `policies:
  - name: p
    matchers: ['alertname="X"']
    steps:
      - action: exec
        params: {argv: [echo, hi]}
`

// mustParse parses YAML that must load without errors.
func mustParse(t *testing.T, yml string) *Config {
	t.Helper()
	c, err := Parse([]byte(yml), "test.yaml", knownExecHTTP())
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return c
}

// parseErr parses YAML that must fail, and returns its problems.
func parseErr(t *testing.T, yml string, known Known) Problems {
	t.Helper()
	c, err := Parse([]byte(yml), "test.yaml", known)
	if err == nil {
		t.Fatalf("Parse: want an error, got none (warnings: %v)", c.Warnings())
	}
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("Parse: error is %T, want Problems", err)
	}
	return ps
}

// wantAll fails unless text contains every wanted substring.
func wantAll(t *testing.T, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("want %q in:\n%s", w, text)
		}
	}
}

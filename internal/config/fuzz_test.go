package config

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary files to the configuration loader: it never
// panics, and it either returns a configuration or Problems, each naming
// the file and a line inside it (or none).
func FuzzParse(f *testing.F) {
	f.Add([]byte(webhookAuth + minimalPolicy))
	f.Add([]byte("server: {listen_address: ':9095'}\nauth: {webhook: {bearer_token: x}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", knownExecHTTP())
		if err == nil {
			if c == nil {
				t.Fatal("no configuration and no error")
			}
			return
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps.Errors()) == 0 {
			t.Fatalf("error is not Problems with an error: %v", err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, p := range ps {
			if p.File != "fuzz.yaml" || p.Line < 0 || p.Line > lines {
				t.Fatalf("problem at %s:%d of a %d-line file: %v", p.File, p.Line, lines, p)
			}
		}
	})
}

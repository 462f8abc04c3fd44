package config

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// lineless are the only problems that may come without a line: they are
// about the file as a whole or about something it does not contain.
var lineless = regexp.MustCompile(strings.Join([]string{
	`^the configuration is empty`,
	`document contains excessive aliasing`,
	`^the webhook needs a credential`, // no auth section at all
	`^path is required`,               // no storage section at all
}, "|"))

// mutate changes local.yaml the way hands and editors break YAML files.
type mutation struct {
	name  string
	apply func(r *rand.Rand, lines []string) []string
}

var mutations = []mutation{
	{"control character", func(r *rand.Rand, ls []string) []string {
		controls := []string{"\x00", "\x01", "\x07", "\x1b", "\x7f", "\u0080", "\ufffe"}
		return insertAt(r, ls, controls[r.IntN(len(controls))])
	}},
	{"invalid UTF-8", func(r *rand.Rand, ls []string) []string {
		bad := []string{"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80"}
		return insertAt(r, ls, bad[r.IntN(len(bad))])
	}},
	{"tab", func(r *rand.Rand, ls []string) []string {
		i := r.IntN(len(ls))
		ls[i] = "\t" + ls[i]
		return ls
	}},
	{"unknown alias", func(r *rand.Rand, ls []string) []string {
		i := valueLine(r, ls)
		k, _, _ := strings.Cut(ls[i], ":")
		ls[i] = k + ": *undefined_anchor"
		return ls
	}},
	{"anchor and alias", func(r *rand.Rand, ls []string) []string {
		i, j := valueLine(r, ls), valueLine(r, ls)
		k, v, _ := strings.Cut(ls[i], ":")
		ls[i] = k + ": &a" + v
		k, _, _ = strings.Cut(ls[j], ":")
		ls[j] = k + ": *a"
		return ls
	}},
	{"duplicate line", func(r *rand.Rand, ls []string) []string {
		i := r.IntN(len(ls))
		return append(ls[:i+1], append([]string{ls[i]}, ls[i+1:]...)...)
	}},
	{"delete line", func(r *rand.Rand, ls []string) []string {
		i := r.IntN(len(ls))
		return append(ls[:i], ls[i+1:]...)
	}},
	{"indent", func(r *rand.Rand, ls []string) []string {
		i := r.IntN(len(ls))
		if r.IntN(2) == 0 {
			ls[i] = "  " + ls[i]
		} else {
			ls[i] = strings.TrimPrefix(ls[i], "  ")
		}
		return ls
	}},
	{"unknown key", func(r *rand.Rand, ls []string) []string {
		i := valueLine(r, ls)
		indent := ls[i][:len(ls[i])-len(strings.TrimLeft(ls[i], " -"))]
		indent = strings.ReplaceAll(indent, "-", " ")
		return append(ls[:i+1], append([]string{indent + "bogus_key: 1"}, ls[i+1:]...)...)
	}},
	{"wrong value", func(r *rand.Rand, ls []string) []string {
		i := valueLine(r, ls)
		k, _, _ := strings.Cut(ls[i], ":")
		values := []string{"-1", "0", "yes", "[1, 2]", "{a: 1}", "''", "10x", "1y", "\"\\q\"", "null", "~", "- x"}
		ls[i] = k + ": " + values[r.IntN(len(values))]
		return ls
	}},
	{"stray punctuation", func(r *rand.Rand, ls []string) []string {
		punct := []string{"[", "]", "{", "}", ":", ": :", "\"", "'", "|", ">", "&", "*", "!", "%", "@", "`", "#"}
		return insertAt(r, ls, punct[r.IntN(len(punct))])
	}},
	{"truncate", func(r *rand.Rand, ls []string) []string {
		i := r.IntN(len(ls))
		ls[i] = ls[i][:r.IntN(len(ls[i])+1)]
		return ls[:i+1]
	}},
}

// insertAt inserts s at a random position of a random line.
func insertAt(r *rand.Rand, ls []string, s string) []string {
	i := r.IntN(len(ls))
	at := r.IntN(len(ls[i]) + 1)
	ls[i] = ls[i][:at] + s + ls[i][at:]
	return ls
}

// valueLine picks a line holding a key and a value.
func valueLine(r *rand.Rand, ls []string) int {
	for range 100 {
		i := r.IntN(len(ls))
		t := strings.TrimSpace(ls[i])
		if k, v, ok := strings.Cut(t, ":"); ok && k != "" && !strings.HasPrefix(t, "#") && strings.TrimSpace(v) != "" {
			return i
		}
	}
	return 0
}

// TestEveryProblemHasALine mutates deploy/examples/local.yaml 200 times
// (with a fixed seed, so a failure reproduces) and checks that every
// problem drguard check would print names the file and a line, but for the
// few about the file as a whole or a section it lacks (lineless).
func TestEveryProblemHasALine(t *testing.T) {
	t.Setenv("DRGUARD_WEBHOOK_TOKEN", "example-webhook-token")
	t.Setenv("DRGUARD_ADMIN_TOKEN", "example-admin-token")
	orig, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(13, 200))
	kinds := map[string]int{}
	problems := 0
	for n := range 200 {
		m := mutations[r.IntN(len(mutations))]
		lines := strings.Split(string(orig), "\n")
		for range 1 + r.IntN(2) {
			lines = m.apply(r, lines)
		}
		data := []byte(strings.Join(lines, "\n"))
		_, err := Parse(data, "local.yaml", knownExecHTTP())
		var ps Problems
		if err != nil {
			ps = err.(Problems)
		}
		kinds[m.name]++
		for _, p := range ps {
			problems++
			if p.File != "local.yaml" {
				t.Errorf("mutation %d (%s): problem without the file: %v", n, m.name, p)
			}
			if p.Line == 0 && !lineless.MatchString(p.Message) {
				t.Errorf("mutation %d (%s): problem without a line: %v\n%s", n, m.name, p, excerpt(data))
			}
			if p.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Errorf("mutation %d (%s): line %d is past the end of the file: %v", n, m.name, p.Line, p)
			}
		}
	}
	t.Logf("%d problems from 200 mutations: %v", problems, kinds)
	if problems < 150 {
		t.Errorf("only %d problems from 200 mutations: the mutations do not break enough to prove anything", problems)
	}
}

// excerpt shows a mutated file with its control characters visible.
func excerpt(data []byte) string {
	return fmt.Sprintf("%q", data)
}

// TestLinelessYAMLErrorsGetALine: the yaml.v3 errors that name no line
// get the line (and column) of what caused them.
func TestLinelessYAMLErrorsGetALine(t *testing.T) {
	tests := []struct{ name, yml, want string }{
		{"control character", "auth:\n  webhook: {bearer_token: \"a\x01b\"}\n", `test.yaml:2: invalid YAML: control character U+0001 at column 29`},
		{"DEL", "storage:\n  path: da\x7fta\n", `test.yaml:2: invalid YAML: control character U+007F at column 11`},
		{"invalid UTF-8", "storage: {path: x}\n# caf\xe9\n", `test.yaml:2: invalid YAML: byte 0xE9 that is not UTF-8 at column 6`},
		{"unknown alias", "storage:\n  path: data\nguardrails:\n  step_timeout: *timeout\n", `test.yaml:4: invalid YAML: alias *timeout refers to no anchor`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantAll(t, parseErr(t, tc.yml, knownExecHTTP()).Error(), tc.want)
		})
	}
}

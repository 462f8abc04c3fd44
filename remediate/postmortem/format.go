package postmortem

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fruitfulplanet/drguard/remediate"
)

// Bounds on what a post-mortem quotes of a step's output.
const (
	excerptLines = 20
	excerptBytes = 2000
	lineBytes    = 240
)

// doc is a post-mortem being written.
type doc struct{ b strings.Builder }

func (d *doc) f(format string, args ...any) { fmt.Fprintf(&d.b, format, args...) }

// section starts a second-level section.
func (d *doc) section(title string) { d.f("\n## %s\n\n", title) }

// list writes items as a bulleted list, or none when there are none.
func (d *doc) list(items []string, none string) {
	if len(items) == 0 {
		d.f("- %s\n", none)
		return
	}
	for _, it := range items {
		d.f("- %s\n", it)
	}
}

func (d *doc) String() string { return d.b.String() }

// ts writes a time in UTC, RFC 3339.
func ts(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format(time.RFC3339)
}

// dur writes a duration as the rest of drguard does.
func dur(d time.Duration) string { return remediate.FormatDuration(d) }

// seconds converts a measured number of seconds.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// cell makes text safe in a Markdown table cell.
func cell(s string) string {
	if s == "" {
		return "–"
	}
	return strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ").Replace(s)
}

// oneLine is the first line of s, bounded, for a list item.
func oneLine(s string) string {
	line, _, more := strings.Cut(strings.TrimSpace(s), "\n")
	line = strings.TrimSpace(line)
	if len(line) > lineBytes {
		line, more = cut(line, lineBytes), true
	}
	if more {
		line += " …"
	}
	return line
}

// cut shortens s to at most n bytes without splitting a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// excerpt writes the start of a step's output as a fenced block, saying
// how much was left out.
func excerpt(s string) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	left := 0
	if len(lines) > excerptLines {
		left = len(lines) - excerptLines
		lines = lines[:excerptLines]
	}
	text := strings.Join(lines, "\n")
	if len(text) > excerptBytes {
		text = cut(text, excerptBytes) + " …"
	}
	fence := "```"
	for strings.Contains(text, fence) {
		fence += "`"
	}
	out := fence + "text\n" + text + "\n" + fence + "\n"
	if left > 0 {
		out += fmt.Sprintf("_(%d more lines in the journal)_\n", left)
	}
	return out
}

// plural writes n with a noun, in the singular for one.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// blank is a marked blank for humans, with a hint.
func blank(hint string) string {
	if hint == "" {
		return BlankText
	}
	return BlankText + " " + hint
}

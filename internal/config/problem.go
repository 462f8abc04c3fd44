package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Severity says whether a problem prevents the configuration from loading.
type Severity string

// Severities of a Problem.
const (
	// SeverityError makes Load and Parse fail.
	SeverityError Severity = "error"
	// SeverityWarning is reported by Config.Warnings and does not fail loading.
	SeverityWarning Severity = "warning"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	// File is the configuration file's path as given to Load or Parse.
	File string
	// Line is the 1-based line the problem is on, or 0 when unknown.
	Line int
	// Path locates the offending value, e.g. "policies[0].steps[1].action".
	// It is empty when Message already says where the problem is.
	Path string
	// Message says what is wrong. It never contains a secret's value.
	Message  string
	Severity Severity
}

// String formats the problem as "file:line: path: message", omitting the
// line when unknown and the path when empty. It does not show the severity.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is a list of problems. As an error it lists one problem per line.
type Problems []Problem

var _ error = Problems(nil)

// Error returns every problem, one per line; warnings are prefixed with
// "warning: ".
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
		if p.Severity == SeverityWarning {
			lines[i] = "warning: " + lines[i]
		}
	}
	return strings.Join(lines, "\n")
}

// Errors returns the problems of severity error.
func (ps Problems) Errors() Problems { return ps.filter(SeverityError) }

// Warnings returns the problems of severity warning.
func (ps Problems) Warnings() Problems { return ps.filter(SeverityWarning) }

func (ps Problems) filter(s Severity) Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == s {
			out = append(out, p)
		}
	}
	return out
}

// Warnings returns the non-fatal problems found while loading the
// configuration: lint findings about the DR plan.
func (c *Config) Warnings() Problems { return c.warnings }

// problems collects problems for one file, looking line numbers up by path.
type problems struct {
	file  string
	lines lineIndex
	list  Problems
	// suppressed paths already have a structural error; later checks of
	// them or of anything under them would only repeat it.
	suppressed map[string]bool
}

func newProblems(file string) *problems {
	return &problems{file: file, lines: lineIndex{}, suppressed: map[string]bool{}}
}

// suppress silences later problems at or under path.
func (ps *problems) suppress(path string) { ps.suppressed[path] = true }

// errorf records an error at path.
func (ps *problems) errorf(path, format string, args ...any) {
	ps.add(SeverityError, path, fmt.Sprintf(format, args...))
}

// warnf records a warning at path.
func (ps *problems) warnf(path, format string, args ...any) {
	ps.add(SeverityWarning, path, fmt.Sprintf(format, args...))
}

func (ps *problems) add(sev Severity, path, msg string) {
	for p := path; p != ""; p = parentPath(p) {
		if ps.suppressed[p] {
			return
		}
	}
	ps.list = append(ps.list, Problem{File: ps.file, Line: ps.lines.lookup(path), Path: path, Message: msg, Severity: sev})
}

// addAt records a problem whose line is already known.
func (ps *problems) addAt(line int, path, msg string) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Path: path, Message: msg, Severity: SeverityError})
}

func (ps *problems) hasErrors() bool {
	for _, p := range ps.list {
		if p.Severity == SeverityError {
			return true
		}
	}
	return false
}

// sorted returns the problems in file order; problems without a line first.
func (ps *problems) sorted() Problems {
	out := append(Problems(nil), ps.list...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// lineIndex maps a value's path ("policies[0].steps[1].action") to the line
// it is on in the file.
type lineIndex map[string]int

// lookup returns the line of path, or of its nearest ancestor that has one.
func (li lineIndex) lookup(path string) int {
	for path != "" {
		if l, ok := li[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath strips the last element of a path: "a.b[2]" → "a.b" → "a" → "".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// joinPath appends a key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a sequence index to a path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

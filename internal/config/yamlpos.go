package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// yaml.v3 reports a few errors without a line: characters its reader
// refuses (control characters, bytes that are not UTF-8) and aliases of
// anchors never defined. locateLines finds those lines in the file itself.
var (
	yamlReaderErrRE = regexp.MustCompile(`control characters are not allowed|UTF-8 octet|invalid Unicode character`)
	yamlAnchorErrRE = regexp.MustCompile(`unknown anchor '([^']*)' referenced`)
)

// locateLines gives a line to every problem that yaml.v3 left without one
// and that data can place, and says where on the line it is.
func (ps *problems) locateLines(data []byte) {
	for i := range ps.list {
		p := &ps.list[i]
		if p.Line != 0 {
			continue
		}
		switch {
		case yamlReaderErrRE.MatchString(p.Message):
			if line, col, what := firstUnreadable(data); line > 0 {
				p.Line = line
				p.Message = fmt.Sprintf("invalid YAML: %s at column %d; YAML allows tabs, newlines and printable UTF-8 only", what, col)
			}
		case yamlAnchorErrRE.MatchString(p.Message):
			name := yamlAnchorErrRE.FindStringSubmatch(p.Message)[1]
			if line := firstAlias(data, name); line > 0 {
				p.Line = line
				p.Message = fmt.Sprintf("invalid YAML: alias *%s refers to no anchor (define &%s before it)", name, name)
			}
		}
	}
}

// firstUnreadable finds the first character YAML's reader refuses, with
// its 1-based line and column and a description that never echoes
// printable content.
func firstUnreadable(data []byte) (line, col int, what string) {
	line, col = 1, 0
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		col++
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, fmt.Sprintf("byte 0x%02X that is not UTF-8", data[off])
		case !yamlPrintable(r):
			return line, col, fmt.Sprintf("control character %U", r)
		case r == '\n':
			line, col = line+1, 0
		}
		off += size
	}
	return 0, 0, ""
}

// yamlPrintable is the character set YAML 1.2 allows in a stream.
func yamlPrintable(r rune) bool {
	switch {
	case r == 0x09, r == 0x0A, r == 0x0D, r >= 0x20 && r <= 0x7E, r == 0x85:
		return true
	case r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// firstAlias returns the line of the first alias *name in data.
func firstAlias(data []byte, name string) int {
	for i, l := range bytes.Split(data, []byte("\n")) {
		s := string(l)
		for at := strings.Index(s, "*"+name); at >= 0; {
			end := at + 1 + len(name)
			if end == len(s) || strings.ContainsRune(" \t,]}#", rune(s[end])) {
				return i + 1
			}
			next := strings.Index(s[at+1:], "*"+name)
			if next < 0 {
				break
			}
			at += 1 + next
		}
	}
	return 0
}

package config

import (
	"regexp"
	"sort"
	"strings"

	"github.com/fruitfulplanet/drguard/internal/params"
)

// Allow-list params. A step that templates where its http request goes, or
// which program it runs, must list the values it may take; the action
// checks the rendered value against the list before it sends or runs
// anything.
const (
	// ParamAllowedHosts lists the hosts (host, or host:port) a step's
	// templated url may reach.
	ParamAllowedHosts = "allowed_hosts"
	// ParamAllowedCommands lists the programs a step's templated argv[0]
	// may name.
	ParamAllowedCommands = "allowed_commands"
)

// literalAuthorityRE matches the start of a URL whose scheme, user
// information, host and port are all written out, up to the character that
// ends the authority.
var literalAuthorityRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#{}]*[/?#]`)

// steering checks a step's params for templates, which alert labels and
// annotations fill, in places that decide where a request and its secrets
// go or what runs: a URL's scheme, host or port, a file path, a header name,
// exec's argv[0]. They must be literal unless the step lists what they may
// become (allowed_hosts, allowed_commands); the lists themselves must be
// literal.
func (v *validator) steering(path string, st *Step) {
	ps := st.Params
	for _, key := range []string{ParamAllowedHosts, ParamAllowedCommands} {
		if x, ok := ps[key]; ok {
			v.allowList(joinPath(path, key), x)
		}
	}
	if st.Action == "exec" {
		if argv, ok := ps["argv"].([]any); ok && len(argv) > 0 {
			if s, ok := argv[0].(string); ok && params.IsTemplate(s) && !hasList(ps, ParamAllowedCommands) {
				v.ps.errorf(indexPath(joinPath(path, "argv"), 0),
					"argv[0] is a template: an alert label could choose the program drguard runs; write the program literally, or list the programs it may name in %s", ParamAllowedCommands)
			}
		}
	}
	v.steeringValues(path, ps, hasList(ps, ParamAllowedHosts))
}

// steeringValues walks a params map, checking URLs, file paths and header
// names by their key.
func (v *validator) steeringValues(path string, m map[string]any, hostsListed bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := joinPath(path, k)
		switch x := m[k].(type) {
		case string:
			v.steeringString(p, k, x, hostsListed)
		case []any:
			for i, e := range x {
				if s, ok := e.(string); ok && isPathKey(k) && params.IsTemplate(s) {
					v.templatedPath(indexPath(p, i))
				}
				if sub, ok := e.(map[string]any); ok {
					v.steeringValues(indexPath(p, i), sub, hostsListed)
				}
			}
		case map[string]any:
			if k == "headers" || k == "header_files" {
				v.headerNames(p, x)
			}
			if isPathKey(k) {
				v.templatedPaths(p, x)
				continue
			}
			v.steeringValues(p, x, hostsListed)
		}
	}
}

// steeringString checks one string param by its key.
func (v *validator) steeringString(path, key, s string, hostsListed bool) {
	if !params.IsTemplate(s) {
		return
	}
	switch {
	case isURLKey(key):
		if !literalAuthorityRE.MatchString(s) && !hostsListed {
			v.ps.errorf(path, "the URL's scheme, host or port is a template: an alert label could send the request, and its secret headers, anywhere; write them literally (templates may follow the first / ? or #), or list the hosts it may reach in %s", ParamAllowedHosts)
		}
	case isPathKey(key):
		v.templatedPath(path)
	}
}

// templatedPaths reports every template under a map of file paths.
func (v *validator) templatedPaths(path string, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s, ok := m[k].(string); ok && params.IsTemplate(s) {
			v.templatedPath(joinPath(path, k))
		}
	}
}

func (v *validator) templatedPath(path string) {
	v.ps.errorf(path, "a file path is a template: an alert label could choose which file drguard reads or uses; write the path literally")
}

// headerNames refuses header names that hold template actions (names are
// never rendered: such a header would go out under the template's text).
func (v *validator) headerNames(path string, m map[string]any) {
	for k := range m {
		if params.IsTemplate(k) {
			v.ps.errorf(joinPath(path, k), "a header name is a template: header names are written literally")
		}
	}
}

// allowList checks an allow-list: a non-empty list of literal strings.
func (v *validator) allowList(path string, x any) {
	list, ok := x.([]any)
	if !ok || len(list) == 0 {
		v.ps.errorf(path, "want a non-empty list")
		return
	}
	for i, e := range list {
		s, ok := e.(string)
		switch {
		case !ok || strings.TrimSpace(s) == "":
			v.ps.errorf(indexPath(path, i), "want a non-empty string")
		case params.IsTemplate(s):
			v.ps.errorf(indexPath(path, i), "an allow-list entry is a template: write it literally")
		}
	}
}

// hasList reports whether params hold a non-empty list at key.
func hasList(ps map[string]any, key string) bool {
	l, ok := ps[key].([]any)
	return ok && len(l) > 0
}

// isURLKey reports whether a param key names a URL: url, or ending in _url.
func isURLKey(k string) bool { return k == "url" || strings.HasSuffix(k, "_url") }

// isPathKey reports whether a param key names file paths: header_files,
// any *_file or *_files, file, path, paths, dir.
func isPathKey(k string) bool {
	switch k {
	case "file", "files", "path", "paths", "dir":
		return true
	}
	return strings.HasSuffix(k, "_file") || strings.HasSuffix(k, "_files") || strings.HasSuffix(k, "_path") || strings.HasSuffix(k, "_dir")
}

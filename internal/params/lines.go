package params

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Lines writes rendered params for people to read — an approval in the
// console or in Slack — one "key: value" per line in key order: strings as
// they are, other values as JSON. No params is "(none)".
func Lines(p map[string]any) string {
	if len(p) == 0 {
		return "(none)"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(p)) {
		v, ok := p[k].(string)
		if !ok {
			raw, _ := json.Marshal(p[k])
			v = string(raw)
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

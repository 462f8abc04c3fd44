package action

import (
	"fmt"
	"strings"
	"time"
)

// Time is an RFC 3339 time param (or the form Go's time.Time prints in
// templates, {{ .Incident.StartsAt }}).
type Time struct{ time.Time }

// UnmarshalMapstructure parses a string; an empty one is the zero time.
func (t *Time) UnmarshalMapstructure(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("want an RFC 3339 time such as 2025-11-20T00:00:00Z")
	}
	if strings.TrimSpace(s) == "" {
		t.Time = time.Time{}
		return nil
	}
	parsed, err := parseTime(s)
	if err != nil {
		return err
	}
	t.Time = parsed
	return nil
}

// pickTarget chooses the configured target of one kind that a step acts
// on: the step's `target` param when set; else the run's target when it
// names a target of this kind; else the only target of this kind. names
// lists the configured targets' names in file order.
func pickTarget(kind string, names []string, param, runTarget string) (int, error) {
	find := func(n string) int {
		for i, x := range names {
			if x == n {
				return i
			}
		}
		return -1
	}
	if param != "" {
		if i := find(param); i >= 0 {
			return i, nil
		}
		return -1, fmt.Errorf("no %s target named %q in the configuration (known: %s)", kind, param, listOrNone(names))
	}
	if i := find(runTarget); runTarget != "" && i >= 0 {
		return i, nil
	}
	switch len(names) {
	case 0:
		return -1, fmt.Errorf("no %s target is configured: add one under targets.%s", kind, kind)
	case 1:
		return 0, nil
	}
	return -1, fmt.Errorf("several %s targets are configured (%s): set param \"target\"", kind, strings.Join(names, ", "))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// parseTime parses an RFC 3339 time, or the form Go's time.Time prints
// in templates ({{ .Incident.StartsAt }}).
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999 -0700 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2025-11-20T00:00:00Z", s)
}

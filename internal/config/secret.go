package config

import "log/slog"

// Secret is a credential. It prints, marshals and logs as "<secret>" so it
// cannot leak through fmt, JSON, YAML or slog.
type Secret string

const redacted = "<secret>"

// String returns "<secret>" unless the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalJSON hides the secret from JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML hides the secret from YAML output.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue hides the secret from log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret's value, for use at the point of comparison or
// transmission only.
func (s Secret) Reveal() string { return string(s) }

package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

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

// SecretRef is where a secret comes from: a value written in the
// configuration, in which each ${NAME} is replaced by the environment
// variable NAME, or a file whose contents, less one trailing newline, are
// the secret. A relative file is relative to the configuration file's
// directory. The configuration's own secrets (the `x` and `x_file` keys)
// are SecretRefs resolved when it loads; actions keep theirs (an http
// step's header_files, patch_secret's value_files) and resolve them with
// Config.ReadSecret when the step runs, so a rotated file is read anew.
// Either way the resolution is the one in this package: nothing else
// expands ${NAME} in a secret or reads a secret file.
type SecretRef struct {
	Value Secret
	File  string
}

// IsZero reports whether r names no secret.
func (r SecretRef) IsZero() bool { return r.Value == "" && r.File == "" }

// String returns "<secret>", or "<secret in FILE>" for a file: the path is
// not the secret.
func (r SecretRef) String() string {
	if r.File != "" {
		return "<secret in " + r.File + ">"
	}
	return r.Value.String()
}

// GoString hides the value from %#v.
func (r SecretRef) GoString() string { return r.String() }

// MarshalJSON hides the value from JSON output.
func (r SecretRef) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// LogValue hides the value from log/slog.
func (r SecretRef) LogValue() slog.Value { return slog.StringValue(r.String()) }

// UnmarshalMapstructure decodes an action param: a string names the file
// that holds the secret.
func (r *SecretRef) UnmarshalMapstructure(v any) error {
	s, ok := v.(string)
	if !ok || strings.TrimSpace(s) == "" {
		return errors.New("want the path of a file holding the secret")
	}
	*r = SecretRef{File: s}
	return nil
}

// resolve returns the secret r names: the value with ${NAME} expanded, or
// the file (relative to dir) read now. Errors name the variable or the
// file, never a value.
func (r SecretRef) resolve(dir string) (Secret, error) {
	switch {
	case r.Value != "" && r.File != "":
		return "", errors.New("set either a value or a file, not both")
	case r.File != "":
		raw, err := ReadSecretFile(resolvePath(dir, r.File))
		if err != nil {
			return "", err
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		if s == "" {
			return "", fmt.Errorf("file %s is empty", resolvePath(dir, r.File))
		}
		return Secret(s), nil
	}
	v, _, err := expandEnv(string(r.Value), os.LookupEnv)
	return Secret(v), err
}

// ReadSecret returns the secret ref names, resolved as the configuration's
// own secrets are: ${NAME} in a value from the environment, a relative
// file against the configuration file's directory (the working directory
// for a configuration built in code), the file read now. Errors name the
// variable or the file, never the secret.
func (c *Config) ReadSecret(ref SecretRef) (Secret, error) {
	return ref.resolve(c.dir())
}

// dir is the directory relative paths in c are relative to.
func (c *Config) dir() string {
	if c == nil || c.File == "" {
		return "."
	}
	return filepath.Dir(c.File)
}

// maxSecretFileBytes bounds what a secret file may hold.
const maxSecretFileBytes = 1 << 20

// ReadSecretFile returns the whole contents of a secret file (a key file
// may be binary, so nothing is trimmed), at most 1 MiB. Errors name the
// file, never its contents. It is the one reader of secret files.
func ReadSecretFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fileError(name, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return nil, fileError(name, err)
	}
	if len(raw) > maxSecretFileBytes {
		return nil, fmt.Errorf("file %s is larger than %d bytes: not a secret", name, maxSecretFileBytes)
	}
	return raw, nil
}

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// resolver fills Secret fields from the environment and from files when
// the configuration loads, each through its SecretRef (see
// SecretRef.resolve): nothing else in the file is touched by the
// environment.
type resolver struct {
	ps *problems
	// dir is the configuration file's directory; relative *_file paths
	// are resolved against it.
	dir string
}

// resolveSecrets resolves every secret and file reference of c.
func (r *resolver) resolveSecrets(c *Config) {
	r.secret("server", "session_key", &c.Server.SessionKey, &c.Server.SessionKeyFile)
	wh := &c.Auth.Webhook
	r.secret("auth.webhook", "bearer_token", &wh.BearerToken, &wh.BearerTokenFile)
	if ba := wh.BasicAuth; ba != nil {
		r.secret("auth.webhook.basic_auth", "password", &ba.Password, &ba.PasswordFile)
	}
	for i := range c.Auth.Users {
		u := &c.Auth.Users[i]
		r.secret(indexPath("auth.users", i), "token", &u.Token, &u.TokenFile)
	}
	for i := range c.Targets.Postgres {
		t := &c.Targets.Postgres[i]
		r.secret(indexPath("targets.postgres", i), "dsn", &t.DSN, &t.DSNFile)
	}
	for i := range c.Targets.Redis {
		t := &c.Targets.Redis[i]
		r.secret(indexPath("targets.redis", i), "password", &t.Password, &t.PasswordFile)
		if t.TLS != nil {
			t.TLS.SetDirectory(r.dir)
		}
	}
	r.notifierSecrets(c)
	r.storageSecrets(c)
	for i := range c.Backups {
		b := &c.Backups[i]
		if b.KeyFile != "" {
			b.KeyFile = resolvePath(r.dir, b.KeyFile)
			r.checkReadable(joinPath(indexPath("backups", i), "key_file"), b.KeyFile)
		}
	}
}

// secret resolves one secret: the literal value at base.key, with ${NAME}
// expanded, or the contents of the file named at base.key_file. The file
// field is rewritten to the resolved path.
func (r *resolver) secret(base, key string, s *Secret, file *string) {
	valuePath, filePath := joinPath(base, key), joinPath(base, key+"_file")
	ref := SecretRef{Value: *s, File: *file}
	switch {
	case ref.IsZero():
		return
	case ref.Value != "" && ref.File != "":
		r.ps.errorf(filePath, "set either %s or %s_file, not both", key, key)
		*s = ""
		return
	case ref.File != "":
		*file = resolvePath(r.dir, *file)
		valuePath = filePath
	case !referencesEnv(string(ref.Value)):
		r.ps.warnf(valuePath, "the secret is written in the configuration itself; use ${ENV_VAR} or %s_file so the file can be shared", key)
	}
	v, err := ref.resolve(r.dir)
	if err != nil {
		r.ps.errorf(valuePath, "%v", err)
		v = ""
	}
	*s = v
}

// referencesEnv reports whether s holds a ${NAME} to expand.
func referencesEnv(s string) bool {
	_, literal, _ := expandEnv(s, func(string) (string, bool) { return "x", true })
	return !literal
}

// expandEnv replaces each ${NAME} in s with the environment variable NAME,
// as lookup finds it. literal reports that s referenced no variable at
// all. Errors name the variables, never a value.
func expandEnv(s string, lookup func(string) (string, bool)) (out string, literal bool, err error) {
	var b strings.Builder
	var errs []error
	literal = true
	for {
		start := strings.Index(s, "${")
		if start < 0 {
			break
		}
		end := strings.IndexByte(s[start:], '}')
		if end < 0 {
			break
		}
		name := s[start+2 : start+end]
		if !validEnvName(name) {
			b.WriteString(s[:start+end+1])
			s = s[start+end+1:]
			continue
		}
		literal = false
		b.WriteString(s[:start])
		s = s[start+end+1:]
		v, ok := lookup(name)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("environment variable %s is not set", name))
		case v == "":
			errs = append(errs, fmt.Errorf("environment variable %s is empty", name))
		}
		b.WriteString(v)
	}
	b.WriteString(s)
	return b.String(), literal, errors.Join(errs...)
}

// validEnvName reports whether name is a POSIX-style variable name.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// resolvePath resolves a relative path against dir.
func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// checkReadable reports a secret file that cannot be read or is empty.
func (r *resolver) checkReadable(path, name string) {
	raw, err := ReadSecretFile(name)
	switch {
	case err != nil:
		r.ps.errorf(path, "%v", err)
	case len(raw) == 0:
		r.ps.errorf(path, "file %s is empty", name)
	}
}

// fileError words a file error for an SRE.
func fileError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("file %s does not exist", name)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("file %s is not readable (permission denied)", name)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read file %s: %v", name, pe.Err)
	}
	return fmt.Errorf("cannot read file %s: %v", name, err)
}

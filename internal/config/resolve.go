package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// resolver fills Secret fields from the environment and from files. It is
// the only place where ${NAME} is expanded: nothing else in the file is
// touched by the environment.
type resolver struct {
	ps *problems
	// dir is the configuration file's directory; relative *_file paths
	// are resolved against it.
	dir string
	// lookupEnv is os.LookupEnv, replaceable for tests.
	lookupEnv func(string) (string, bool)
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
	for i := range c.Backups {
		b := &c.Backups[i]
		if b.KeyFile != "" {
			b.KeyFile = r.path(b.KeyFile)
			r.checkReadable(joinPath(indexPath("backups", i), "key_file"), b.KeyFile)
		}
	}
}

// secret resolves one secret: the literal value at base.key, with ${NAME}
// expanded, or the contents of the file named at base.key_file. The file
// field is rewritten to the resolved path.
func (r *resolver) secret(base, key string, s *Secret, file *string) {
	valuePath, filePath := joinPath(base, key), joinPath(base, key+"_file")
	switch {
	case *s != "" && *file != "":
		r.ps.errorf(filePath, "set either %s or %s_file, not both", key, key)
		*s = ""
	case *file != "":
		*file = r.path(*file)
		v, err := readSecretFile(*file)
		if err != nil {
			r.ps.errorf(filePath, "%v", err)
			return
		}
		*s = Secret(v)
	case *s != "":
		v, literal, err := r.expand(string(*s))
		if err != nil {
			r.ps.errorf(valuePath, "%v", err)
			*s = ""
			return
		}
		if literal {
			r.ps.warnf(valuePath, "the secret is written in the configuration itself; use ${ENV_VAR} or %s_file so the file can be shared", key)
		}
		*s = Secret(v)
	}
}

// expand replaces each ${NAME} in s with the environment variable NAME.
// literal reports that s referenced no variable at all. Errors name the
// variables, never a value.
func (r *resolver) expand(s string) (out string, literal bool, err error) {
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
		v, ok := r.lookupEnv(name)
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

// path resolves a relative path against the configuration's directory.
func (r *resolver) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.dir, p)
}

// readSecretFile reads a secret from a file, dropping one trailing newline.
// Its errors name the file, never its contents.
func readSecretFile(name string) (string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return "", fileError(name, err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("file %s is empty", name)
	}
	return s, nil
}

// checkReadable reports a file that cannot be opened or is empty.
func (r *resolver) checkReadable(path, name string) {
	f, err := os.Open(name)
	if err != nil {
		r.ps.errorf(path, "%v", fileError(name, err))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		r.ps.errorf(path, "%v", fileError(name, err))
	case st.IsDir():
		r.ps.errorf(path, "%s is a directory, not a file", name)
	case st.Size() == 0:
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

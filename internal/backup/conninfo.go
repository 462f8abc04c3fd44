package backup

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// conninfo is a PostgreSQL connection string taken apart into libpq
// keywords, so that drguard can hand pg_dump and pg_restore everything but
// the password on the command line (visible in ps) and the password in
// PGPASSWORD, change the database name, and redact the password from their
// messages.
type conninfo map[string]string

// parseConninfo accepts both libpq forms: a URI (postgres://…) and
// keyword=value pairs. Errors never contain the string itself.
func parseConninfo(dsn string) (conninfo, error) {
	s := strings.TrimSpace(dsn)
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		return parseURI(s)
	}
	return parseKeywords(s)
}

// parseURI parses postgres://user:password@host:port,host2/db?key=value.
func parseURI(s string) (conninfo, error) {
	c := conninfo{}
	rest := s[strings.Index(s, "://")+3:]
	if i := strings.IndexAny(rest, "?"); i >= 0 {
		q, err := url.ParseQuery(rest[i+1:])
		if err != nil {
			return nil, errors.New("invalid connection URI: bad query parameters")
		}
		for k, v := range q {
			c[k] = v[len(v)-1]
		}
		rest = rest[:i]
	}
	authority := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority = rest[:i]
		db, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return nil, errors.New("invalid connection URI: bad database name")
		}
		if db != "" {
			c["dbname"] = db
		}
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		user, pass, hasPass := strings.Cut(authority[:i], ":")
		var err error
		if c["user"], err = url.PathUnescape(user); err != nil {
			return nil, errors.New("invalid connection URI: bad user name")
		}
		if hasPass {
			if c["password"], err = url.PathUnescape(pass); err != nil {
				return nil, errors.New("invalid connection URI: bad password encoding")
			}
		}
		authority = authority[i+1:]
	}
	var hosts, ports []string
	for _, hp := range strings.Split(authority, ",") {
		host, port := hp, ""
		if strings.HasPrefix(hp, "[") {
			end := strings.IndexByte(hp, ']')
			if end < 0 {
				return nil, errors.New("invalid connection URI: unclosed [ in host")
			}
			host, port = hp[1:end], strings.TrimPrefix(hp[end+1:], ":")
		} else if i := strings.LastIndexByte(hp, ':'); i >= 0 {
			host, port = hp[:i], hp[i+1:]
		}
		host, err := url.PathUnescape(host)
		if err != nil {
			return nil, errors.New("invalid connection URI: bad host")
		}
		hosts, ports = append(hosts, host), append(ports, port)
	}
	if strings.Join(hosts, "") != "" {
		c["host"] = strings.Join(hosts, ",")
	}
	if strings.Join(ports, "") != "" {
		c["port"] = strings.Join(ports, ",")
	}
	for k, v := range c {
		if v == "" {
			delete(c, k)
		}
	}
	return c, nil
}

// parseKeywords parses `host=h port=5432 password='a b\'c'`.
func parseKeywords(s string) (conninfo, error) {
	c := conninfo{}
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return c, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, errors.New("invalid connection string: want keyword=value pairs or a postgres:// URI")
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			s = s[1:]
			closed := false
			for len(s) > 0 {
				ch := s[0]
				s = s[1:]
				if ch == '\\' && len(s) > 0 {
					val.WriteByte(s[0])
					s = s[1:]
					continue
				}
				if ch == '\'' {
					closed = true
					break
				}
				val.WriteByte(ch)
			}
			if !closed {
				return nil, fmt.Errorf("invalid connection string: unterminated quoted value for %s", key)
			}
		} else {
			for len(s) > 0 && !strings.ContainsRune(" \t\n\r", rune(s[0])) {
				if s[0] == '\\' && len(s) > 1 {
					s = s[1:]
				}
				val.WriteByte(s[0])
				s = s[1:]
			}
		}
		c[key] = val.String()
	}
}

// with returns a copy with key set to value.
func (c conninfo) with(key, value string) conninfo {
	out := make(conninfo, len(c)+1)
	for k, v := range c {
		out[k] = v
	}
	out[key] = value
	return out
}

// String formats the connection as keyword=value pairs, password
// included: for pgx, never for a command line or a message.
func (c conninfo) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := strings.ReplaceAll(c[k], `\`, `\\`)
		parts[i] = k + "='" + strings.ReplaceAll(v, `'`, `\'`) + "'"
	}
	return strings.Join(parts, " ")
}

// command returns the connection string for a libpq tool's -d (without the
// password) and the environment that carries the password.
func (c conninfo) command() (dsn string, env []string) {
	pw, ok := c["password"]
	noPW := make(conninfo, len(c))
	for k, v := range c {
		if k != "password" {
			noPW[k] = v
		}
	}
	if ok {
		env = append(env, "PGPASSWORD="+pw)
	}
	return noPW.String(), env
}

// redact removes the password from a message.
func (c conninfo) redact(msg string) string {
	if pw := c["password"]; len(pw) >= 3 {
		msg = strings.ReplaceAll(msg, pw, "<secret>")
		msg = strings.ReplaceAll(msg, url.PathEscape(pw), "<secret>")
	}
	return msg
}

// describe names the server and database for messages: host:port/db.
func (c conninfo) describe() string {
	host := c["host"]
	if host == "" {
		host = "localhost"
	}
	if p := c["port"]; p != "" {
		host += ":" + p
	}
	return host + "/" + c["dbname"]
}

// redactErr returns err with the password removed from its message.
func (c conninfo) redactErr(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(c.redact(err.Error()))
}

package config

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/common/model"
)

// Journal backends, the values of storage.type.
const (
	// StorageEmbedded is the default: a journal in files under
	// storage.path, for one replica.
	StorageEmbedded = "embedded"
	// StoragePostgres is a journal in a PostgreSQL database shared by
	// several replicas; never a database drguard guards.
	StoragePostgres = "postgres"
)

// Storage says where the journal lives.
type Storage struct {
	// Type is embedded (default) or postgres.
	Type string `yaml:"type" json:"type"`
	// Path is the embedded journal's directory. Default "data".
	Path string `yaml:"path" json:"path"`
	// DSN (or the file DSNFile) is the PostgreSQL journal's connection
	// string, a libpq URL or key=value string; postgres only.
	DSN     Secret `yaml:"dsn" json:"dsn"`
	DSNFile string `yaml:"dsn_file" json:"dsn_file"`
	// Lease is the leader election among replicas on the postgres
	// journal. The embedded journal is one replica, which always leads.
	Lease Lease `yaml:"lease" json:"lease"`
	// Retention is how long a resolved incident (with its runs,
	// approvals and chat messages) stays in the journal after it ended.
	// Default DefaultRetention.
	Retention model.Duration `yaml:"retention" json:"retention"`
}

// DefaultRetention is storage.retention's default: a year, the plan's
// longest backup retention, so an incident is kept at least as long as
// the backups that might be restored because of it.
const DefaultRetention = model.Duration(365 * 24 * time.Hour)

func (s *Storage) applyDefaults() {
	setString(&s.Type, StorageEmbedded)
	setString(&s.Path, DefaultStoragePath)
	setDuration(&s.Retention, DefaultRetention)
	s.Lease.applyDefaults()
}

// storageSecrets resolves the journal's DSN.
func (r *resolver) storageSecrets(c *Config) {
	r.secret("storage", "dsn", &c.Storage.DSN, &c.Storage.DSNFile)
}

func (v *validator) storage() {
	s := v.c.Storage
	v.lease()
	if s.Retention < model.Duration(24*time.Hour) {
		v.ps.errorf("storage.retention", "must be at least 1d: resolved incidents older than it are deleted from the journal")
	}
	switch s.Type {
	case StorageEmbedded:
		if s.Path == "" {
			v.ps.errorf("storage.path", "path is required")
		}
		if s.DSN != "" || s.DSNFile != "" {
			v.ps.errorf(storageDSNPath(s), "dsn is for the postgres journal: set type: postgres, or remove it")
		}
	case StoragePostgres:
		if s.DSN == "" {
			if s.DSNFile == "" {
				v.ps.errorf("storage.dsn", "the postgres journal needs dsn (or dsn_file)")
			}
			return
		}
		if _, err := pgconn.ParseConfig(s.DSN.Reveal()); err != nil {
			// pgconn's message quotes the DSN, which may hold a password.
			v.ps.errorf(storageDSNPath(s), "the DSN does not parse as a libpq URL or key=value string")
		}
	default:
		v.ps.errorf("storage.type", "unknown storage type %q: want %s or %s", s.Type, StorageEmbedded, StoragePostgres)
	}
}

// storageDSNPath is where the journal's DSN is written: dsn or dsn_file.
func storageDSNPath(s Storage) string {
	if s.DSNFile != "" {
		return "storage.dsn_file"
	}
	return "storage.dsn"
}

// journalSeparate refuses a PostgreSQL journal in a database that a
// postgres target names: the journal must never live in the database it
// guards, or the incident it must record would take the record with it.
// Every postgres target counts, used or not, since a policy can name its
// target from an alert's labels. Hosts and ports are compared as pgconn
// parses them, fallback hosts included, loopback names as one.
func (v *validator) journalSeparate() {
	s := v.c.Storage
	if s.Type != StoragePostgres || s.DSN == "" {
		return
	}
	journal, err := pgconn.ParseConfig(s.DSN.Reveal())
	if err != nil {
		return // reported by storage()
	}
	for _, t := range v.c.Targets.Postgres {
		target, err := pgconn.ParseConfig(t.DSN.Reveal())
		if err != nil || target.Database != journal.Database {
			continue
		}
		if server, same := sameServer(journal, target); same {
			v.ps.errorf(storageDSNPath(s), "the journal's database %s on %s is also the database of postgres target %q (%s): the journal must never live in the database it guards; give it a database of its own, on a server outside the failure domain",
				journal.Database, server, t.Name, v.targetUses(t.Name))
		}
	}
}

// sameServer reports whether two connection configs reach a server at the
// same host and port, and which.
func sameServer(a, b *pgconn.Config) (string, bool) {
	for _, x := range endpoints(a) {
		if slices.Contains(endpoints(b), x) {
			return x, true
		}
	}
	return "", false
}

// endpoints lists a config's host:port pairs, fallbacks included.
func endpoints(c *pgconn.Config) []string {
	out := []string{endpoint(c.Host, c.Port)}
	for _, f := range c.Fallbacks {
		out = append(out, endpoint(f.Host, f.Port))
	}
	return out
}

func endpoint(host string, port uint16) string {
	h := strings.ToLower(host)
	if h == "localhost" || net.ParseIP(h).IsLoopback() {
		h = "localhost"
	}
	return net.JoinHostPort(h, fmt.Sprint(port))
}

// targetUses says what uses a target: probes, backups, restore tests,
// policy steps whose params name it.
func (v *validator) targetUses(name string) string {
	c := v.c
	var uses []string
	for _, p := range c.Probes {
		if p.Target == name {
			uses = append(uses, fmt.Sprintf("probe %q", p.Name))
		}
	}
	backups := map[string]bool{}
	for _, b := range c.Backups {
		if b.Target == name {
			backups[b.Name] = true
			uses = append(uses, fmt.Sprintf("backup %q", b.Name))
		}
	}
	for _, r := range c.RestoreTests {
		if r.ScratchTarget == name || backups[r.Backup] {
			uses = append(uses, fmt.Sprintf("restore test %q", r.Name))
		}
	}
	for _, p := range c.Policies {
		for _, st := range p.Steps {
			if mentions(st.Params, name) {
				uses = append(uses, fmt.Sprintf("policy %q", p.Name))
				break
			}
		}
	}
	if len(uses) == 0 {
		return "not used yet"
	}
	return "used by " + strings.Join(uses, ", ")
}

// mentions reports whether a params value is, or holds, the string s.
func mentions(x any, s string) bool {
	switch x := x.(type) {
	case string:
		return x == s
	case map[string]any:
		for _, e := range x {
			if mentions(e, s) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if mentions(e, s) {
				return true
			}
		}
	}
	return false
}

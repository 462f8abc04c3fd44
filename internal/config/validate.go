package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/common/model"
)

// labelNameRE is the classic Prometheus label name syntax.
var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validator checks a decoded, defaulted configuration.
type validator struct {
	c     *Config
	ps    *problems
	known Known
}

// validate checks every section on its own; cross-references come after.
func (v *validator) validate() {
	v.server()
	v.auth()
	v.credentialStrength()
	v.storageAndGuardrails()
	v.objectives()
	v.targets()
	v.probes()
	v.policies()
	v.approvers()
	v.backups()
	v.notifiers()
	v.watchdogs()
	v.slackUsers()
	v.drills()
}

// name checks that an item has a name not used before by its kind.
func (v *validator) name(seen map[string]string, what, path, name string) {
	p := joinPath(path, "name")
	if name == "" {
		v.ps.errorf(p, "%s name is required", what)
		return
	}
	if first, dup := seen[name]; dup {
		v.ps.errorf(p, "duplicate %s name %q (first defined at line %d)", what, name, v.ps.lines.lookup(first))
		return
	}
	seen[name] = path
}

// positive reports a duration that must be greater than zero.
func (v *validator) positive(path string, d model.Duration) {
	if d <= 0 {
		v.ps.errorf(path, "must be greater than 0")
	}
}

// nonNegative reports a negative duration.
func (v *validator) nonNegative(path string, d model.Duration) {
	if d < 0 {
		v.ps.errorf(path, "must not be negative")
	}
}

func (v *validator) server() {
	s := v.c.Server
	if _, _, err := net.SplitHostPort(s.ListenAddress); err != nil {
		v.ps.errorf("server.listen_address", "invalid address %q: want host:port or :port", s.ListenAddress)
	}
	if s.MaxBodyBytes <= 0 {
		v.ps.errorf("server.max_body_bytes", "must be greater than 0")
	}
	if s.ExternalURL != "" {
		v.absoluteURL("server.external_url", s.ExternalURL, "http", "https")
	}
	v.positive("server.shutdown_timeout", s.ShutdownTimeout)
	v.positive("server.session_lifetime", s.SessionLifetime)
	if n := len(s.SessionKey.Reveal()); s.SessionKey != "" && n < MinSessionKeyBytes {
		key := "server.session_key"
		if s.SessionKeyFile != "" {
			key += "_file"
		}
		v.ps.errorf(key, "the session key is %d bytes long; use at least %d random bytes (e.g. openssl rand -hex 32)", n, MinSessionKeyBytes)
	}
}

// absoluteURL checks that raw is an absolute URL with one of the schemes.
func (v *validator) absoluteURL(path, raw string, schemes ...string) {
	v.checkURL(path, raw, fmt.Sprintf("%q", raw), schemes)
}

// checkURL checks a URL, naming it in messages as shown: notifier URLs
// (a Slack webhook URL is a credential) are not echoed.
func (v *validator) checkURL(path, raw, shown string, schemes []string) {
	u, err := url.Parse(raw)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		v.ps.errorf(path, "invalid URL %s: %v", shown, err)
		return
	}
	for _, s := range schemes {
		if u.Scheme == s && (u.Host != "" || u.Opaque != "") {
			return
		}
	}
	v.ps.errorf(path, "invalid URL %s: want an absolute %s URL", shown, strings.Join(schemes, " or "))
}

func (v *validator) auth() {
	a := v.c.Auth
	wh := a.Webhook
	if wh.BearerToken == "" && wh.BearerTokenFile == "" && wh.BasicAuth == nil && !v.known.Offline {
		v.ps.errorf("auth.webhook", "the webhook needs a credential: set bearer_token (or bearer_token_file) or basic_auth, as Alertmanager's http_config sends it")
	}
	if ba := wh.BasicAuth; ba != nil {
		if ba.Username == "" {
			v.ps.errorf("auth.webhook.basic_auth.username", "username is required")
		}
		if ba.Password == "" && ba.PasswordFile == "" {
			v.ps.errorf("auth.webhook.basic_auth.password", "password (or password_file) is required")
		}
	}
	seen := map[string]string{}
	tokens := map[Secret]string{}
	for i, u := range a.Users {
		path := indexPath("auth.users", i)
		v.name(seen, "user", path, u.Name)
		if u.Name == SystemActor {
			v.ps.errorf(joinPath(path, "name"), "the name %q is reserved for drguard's own actions in the audit trail; choose another", SystemActor)
		}
		switch u.Role {
		case RoleViewer, RoleApprover, RoleAdmin:
		case "":
			v.ps.errorf(joinPath(path, "role"), "role is required: one of viewer, approver, admin")
		default:
			v.ps.errorf(joinPath(path, "role"), "unknown role %q: want viewer, approver or admin", u.Role)
		}
		if u.Token == "" {
			if u.TokenFile == "" {
				v.ps.errorf(joinPath(path, "token"), "user %q has no token: set token or token_file", u.Name)
			}
			continue
		}
		if other, dup := tokens[u.Token]; dup {
			v.ps.errorf(joinPath(path, "token"), "users %q and %q have the same token; each user needs their own", other, u.Name)
		}
		tokens[u.Token] = u.Name
	}
}

func (v *validator) storageAndGuardrails() {
	v.storage()
	g := v.c.Guardrails
	if g.DestructiveBudget < 0 {
		v.ps.errorf("guardrails.destructive_budget", "must not be negative")
	}
	v.positive("guardrails.destructive_window", g.DestructiveWindow)
	v.positive("guardrails.approval_expiry", g.ApprovalExpiry)
	v.positive("guardrails.step_timeout", g.StepTimeout)
}

func (v *validator) objectives() {
	for _, svc := range sortedKeys(v.c.Objectives) {
		o := v.c.Objectives[svc]
		path := joinPath("objectives", svc)
		if strings.TrimSpace(svc) == "" {
			v.ps.errorf(path, "service name is empty")
		}
		v.positive(joinPath(path, "rpo"), o.RPO)
		v.positive(joinPath(path, "rto"), o.RTO)
		v.recoverySources(path, o)
	}
}

func (v *validator) targets() {
	t := v.c.Targets
	seen := map[string]map[string]string{}
	for _, r := range t.all() {
		if seen[r.kind] == nil {
			seen[r.kind] = map[string]string{}
		}
		v.name(seen[r.kind], r.kind+" target", r.path, r.name)
	}
	for i, x := range t.Postgres {
		path := joinPath(indexPath("targets.postgres", i), "dsn")
		switch {
		case x.DSN == "" && x.DSNFile == "":
			v.ps.errorf(path, "dsn (or dsn_file) is required")
		case x.DSN != "":
			// pgconn parses both libpq forms as the probes and actions
			// will; its error may quote the DSN, so it is not shown.
			if _, err := pgconn.ParseConfig(x.DSN.Reveal()); err != nil {
				v.ps.errorf(path, "the dsn of postgres target %q is not a valid connection string (URI or key=value pairs; not shown: it may hold a password)", x.Name)
			}
		}
	}
	for i, x := range t.Redis {
		path := joinPath(indexPath("targets.redis", i), "address")
		if _, _, err := net.SplitHostPort(x.Address); err != nil {
			v.ps.errorf(path, "address %q must be host:port", x.Address)
		}
	}
	for i, x := range t.HTTP {
		v.absoluteURL(joinPath(indexPath("targets.http", i), "url"), x.URL, "http", "https")
	}
	for i, x := range t.S3 {
		if x.Bucket == "" {
			v.ps.errorf(joinPath(indexPath("targets.s3", i), "bucket"), "bucket is required")
		}
		if x.Endpoint != "" {
			v.absoluteURL(joinPath(indexPath("targets.s3", i), "endpoint"), x.Endpoint, "http", "https")
		}
	}
	v.cloudTargets()
}

func (v *validator) probes() {
	seen := map[string]string{}
	for i, p := range v.c.Probes {
		path := indexPath("probes", i)
		v.name(seen, "probe", path, p.Name)
		switch {
		case p.Type == "":
			v.ps.errorf(joinPath(path, "type"), "type is required")
		case v.known.ProbeTypes != nil && !v.known.ProbeTypes[p.Type]:
			v.ps.errorf(joinPath(path, "type"), "unknown probe type %q (known: %s)", p.Type, strings.Join(sortedKeys(v.known.ProbeTypes), ", "))
		}
		v.positive(joinPath(path, "interval"), p.Interval)
		v.positive(joinPath(path, "timeout"), p.Timeout)
		if p.Timeout > p.Interval && p.Interval > 0 {
			v.ps.errorf(joinPath(path, "timeout"), "timeout %s is longer than the interval %s", p.Timeout, p.Interval)
		}
		if p.FailureThreshold <= 0 {
			v.ps.errorf(joinPath(path, "failure_threshold"), "must be at least 1")
		}
		if p.SuccessThreshold <= 0 {
			v.ps.errorf(joinPath(path, "success_threshold"), "must be at least 1")
		}
		if p.Scenario == "" {
			v.ps.warnf(path, "probe %q names no scenario; its detections cannot be told apart by policies", p.Name)
		}
	}
}

func (v *validator) backups() {
	seen := map[string]string{}
	for i, b := range v.c.Backups {
		path := indexPath("backups", i)
		v.name(seen, "backup", path, b.Name)
		if b.Target == "" {
			v.ps.errorf(joinPath(path, "target"), "target is required: the postgres target to back up")
		}
		if b.Destination == "" {
			v.ps.errorf(joinPath(path, "destination"), "destination is required: the s3 target to store backups in")
		}
		if b.KeyFile == "" {
			v.ps.errorf(joinPath(path, "key_file"), "key_file is required: backups are encrypted (AES-256)")
		}
		v.positive(joinPath(path, "interval"), b.Interval)
		v.nonNegative(joinPath(path, "retention.daily"), b.Retention.Daily)
		v.nonNegative(joinPath(path, "retention.weekly"), b.Retention.Weekly)
		v.nonNegative(joinPath(path, "retention.monthly"), b.Retention.Monthly)
		v.backupSettings(path, b)
	}
	seen = map[string]string{}
	for i, r := range v.c.RestoreTests {
		path := indexPath("restore_tests", i)
		v.name(seen, "restore test", path, r.Name)
		if r.Backup == "" {
			v.ps.errorf(joinPath(path, "backup"), "backup is required: the backup to restore")
		}
		v.positive(joinPath(path, "interval"), r.Interval)
		v.restoreTestSettings(path, r)
	}
}

// sortedKeys returns a map's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

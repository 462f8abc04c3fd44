package config

import (
	"net"
	"net/mail"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// Notifier types.
const (
	NotifierSlack   = "slack"
	NotifierEmail   = "email"
	NotifierWebhook = "webhook"
)

// Defaults of notifiers, from the plan's communication section.
const (
	// DefaultStatusInterval is "every 30 minutes during active incident".
	DefaultStatusInterval = model.Duration(30 * time.Minute)
	// DefaultRecoveryInterval is "every 2 hours during recovery".
	DefaultRecoveryInterval = model.Duration(2 * time.Hour)
)

// Notifier returns the notifier with the given name.
func (c *Config) Notifier(name string) (Notifier, bool) {
	for _, n := range c.Notifiers {
		if n.Name == name {
			return n, true
		}
	}
	return Notifier{}, false
}

// applyNotifierDefaults fills the status update intervals.
func applyNotifierDefaults(c *Config) {
	for i := range c.Notifiers {
		n := &c.Notifiers[i]
		setDuration(&n.StatusInterval, DefaultStatusInterval)
		setDuration(&n.RecoveryInterval, DefaultRecoveryInterval)
	}
}

// notifierSecrets resolves the notifiers' URL, bearer token and password.
func (r *resolver) notifierSecrets(c *Config) {
	for i := range c.Notifiers {
		n := &c.Notifiers[i]
		base := indexPath("notifiers", i)
		r.secret(base, "url", &n.URL, &n.URLFile)
		r.secret(base, "bearer_token", &n.BearerToken, &n.BearerTokenFile)
		r.secret(base, "password", &n.Password, &n.PasswordFile)
	}
}

// notifiers checks each notifier for what its type needs. A notifier URL
// is a credential (a Slack webhook URL is), so messages never show it.
func (v *validator) notifiers() {
	seen := map[string]string{}
	for i, n := range v.c.Notifiers {
		path := indexPath("notifiers", i)
		v.name(seen, "notifier", path, n.Name)
		switch n.Type {
		case NotifierSlack, NotifierWebhook:
			if n.URL == "" {
				if n.URLFile == "" {
					v.ps.errorf(joinPath(path, "url"), "url is required: the %s URL, as url (use ${ENV}) or url_file", n.Type)
				}
			} else {
				v.checkURL(joinPath(path, "url"), n.URL.Reveal(), "(not shown)", []string{"http", "https"})
			}
			if n.Type == NotifierSlack && n.BearerToken != "" {
				v.ps.warnf(joinPath(path, "bearer_token"), "has no effect on a slack notifier: the webhook URL is the credential")
			}
		case NotifierEmail:
			v.emailNotifier(path, n)
		default:
			v.ps.errorf(joinPath(path, "type"), "unknown notifier type %q: want slack, email or webhook", n.Type)
		}
		v.positive(joinPath(path, "status_interval"), n.StatusInterval)
		v.positive(joinPath(path, "recovery_interval"), n.RecoveryInterval)
		for j, m := range n.Matchers {
			if _, err := labels.ParseMatcher(m); err != nil {
				v.ps.errorf(indexPath(joinPath(path, "matchers"), j), "invalid matcher %q: %v", m, err)
			}
		}
	}
}

// emailNotifier checks an email notifier's relay and addresses.
func (v *validator) emailNotifier(path string, n Notifier) {
	if n.URL != "" || n.URLFile != "" {
		v.ps.errorf(joinPath(path, "url"), "an email notifier has no url: set smarthost, from and to")
	}
	if n.Smarthost == "" {
		v.ps.errorf(joinPath(path, "smarthost"), "smarthost is required: the SMTP relay as host:port")
	} else if host, port, err := net.SplitHostPort(n.Smarthost); err != nil || host == "" || port == "" {
		v.ps.errorf(joinPath(path, "smarthost"), "smarthost %q must be host:port", n.Smarthost)
	}
	if n.From == "" {
		v.ps.errorf(joinPath(path, "from"), "from is required: the sender address")
	} else if _, err := mail.ParseAddress(n.From); err != nil {
		v.ps.errorf(joinPath(path, "from"), "from %q is not an email address", n.From)
	}
	if len(n.To) == 0 {
		v.ps.errorf(joinPath(path, "to"), "to is required: at least one recipient")
	}
	for j, to := range n.To {
		if _, err := mail.ParseAddress(to); err != nil {
			v.ps.errorf(indexPath(joinPath(path, "to"), j), "%q is not an email address", to)
		}
	}
	if n.Password != "" && n.Username == "" {
		v.ps.errorf(joinPath(path, "username"), "username is required with a password")
	}
	if n.BearerToken != "" {
		v.ps.warnf(joinPath(path, "bearer_token"), "has no effect on an email notifier")
	}
}

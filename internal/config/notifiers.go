package config

import (
	"net"
	"net/mail"
	"regexp"
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
	// DefaultNotifierTimeout bounds one delivery.
	DefaultNotifierTimeout = model.Duration(30 * time.Second)
)

// DefaultSlackAPIURL is Slack's Web API.
const DefaultSlackAPIURL = "https://slack.com/api/"

// MinSessionKeyBytes is the shortest server.session_key accepted.
const MinSessionKeyBytes = 32

// slackUserIDRE is the form of a Slack member ID.
var slackUserIDRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// SlackApp reports whether the notifier is a Slack app with a bot token,
// which posts approval requests with buttons.
func (n Notifier) SlackApp() bool { return n.Type == NotifierSlack && n.BotToken != "" }

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
		setDuration(&n.Timeout, DefaultNotifierTimeout)
		if n.Type == NotifierSlack {
			setString(&n.APIURL, DefaultSlackAPIURL)
		}
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
		r.secret(base, "bot_token", &n.BotToken, &n.BotTokenFile)
		r.secret(base, "signing_secret", &n.SigningSecret, &n.SigningSecretFile)
	}
}

// notifiers checks each notifier for what its type needs. A notifier URL
// is a credential (a Slack webhook URL is), so messages never show it.
func (v *validator) notifiers() {
	seen := map[string]string{}
	for i, n := range v.c.Notifiers {
		path := indexPath("notifiers", i)
		v.name(seen, "notifier", path, n.Name)
		if n.Type != NotifierSlack {
			v.slackOnly(path, n)
		}
		switch n.Type {
		case NotifierSlack, NotifierWebhook:
			app := n.Type == NotifierSlack && (n.BotToken != "" || n.BotTokenFile != "")
			switch {
			case n.URL != "":
				v.checkURL(joinPath(path, "url"), n.URL.Reveal(), "(not shown)", []string{"http", "https"})
			case n.URLFile != "" || app:
			case n.Type == NotifierSlack:
				v.ps.errorf(joinPath(path, "url"), "url or bot_token is required: an incoming-webhook URL, or a Slack app's bot token (each as ${ENV} or *_file)")
			default:
				v.ps.errorf(joinPath(path, "url"), "url is required: the %s URL, as url (use ${ENV}) or url_file", n.Type)
			}
			if n.Type == NotifierSlack && n.BearerToken != "" {
				v.ps.warnf(joinPath(path, "bearer_token"), "has no effect on a slack notifier: the webhook URL is the credential")
			}
			if n.Type == NotifierSlack {
				v.slackApp(path, n, app)
			}
		case NotifierEmail:
			v.emailNotifier(path, n)
		default:
			v.ps.errorf(joinPath(path, "type"), "unknown notifier type %q: want slack, email or webhook", n.Type)
		}
		v.positive(joinPath(path, "status_interval"), n.StatusInterval)
		v.positive(joinPath(path, "recovery_interval"), n.RecoveryInterval)
		v.positive(joinPath(path, "timeout"), n.Timeout)
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

// slackApp checks what a Slack app notifier (one with a bot token) needs:
// a channel and the signing secret that verifies its button presses.
func (v *validator) slackApp(path string, n Notifier, app bool) {
	if !app {
		if n.SigningSecret != "" || n.SigningSecretFile != "" {
			v.ps.warnf(joinPath(path, "signing_secret"), "has no effect without bot_token: only a Slack app posts buttons")
		}
		if n.Channel != "" {
			v.ps.warnf(joinPath(path, "channel"), "has no effect without bot_token: an incoming webhook posts to its own channel")
		}
		return
	}
	if n.Channel == "" {
		v.ps.errorf(joinPath(path, "channel"), "channel is required with bot_token: the channel approval requests are posted to")
	}
	if n.SigningSecret == "" && n.SigningSecretFile == "" {
		v.ps.errorf(joinPath(path, "signing_secret"), "signing_secret (or signing_secret_file) is required with bot_token: it verifies the Approve and Reject buttons")
	}
	if n.APIURL != "" {
		v.absoluteURL(joinPath(path, "api_url"), n.APIURL, "http", "https")
	}
}

// slackOnly reports Slack app settings on a notifier of another type.
func (v *validator) slackOnly(path string, n Notifier) {
	for _, k := range []struct {
		key string
		set bool
	}{
		{"bot_token", n.BotToken != "" || n.BotTokenFile != ""},
		{"signing_secret", n.SigningSecret != "" || n.SigningSecretFile != ""},
		{"channel", n.Channel != ""},
		{"api_url", n.APIURL != ""},
	} {
		if k.set {
			v.ps.errorf(joinPath(path, k.key), "%s is for slack notifiers; this one is of type %s", k.key, n.Type)
		}
	}
}

// slackUsers checks the users' Slack member IDs: well formed, each mapped
// to one user, and of use only with a Slack app notifier.
func (v *validator) slackUsers() {
	seen := map[string]string{}
	app := false
	for _, n := range v.c.Notifiers {
		app = app || n.SlackApp() || (n.Type == NotifierSlack && n.BotTokenFile != "")
	}
	for i, u := range v.c.Auth.Users {
		if u.SlackUserID == "" {
			continue
		}
		path := joinPath(indexPath("auth.users", i), "slack_user_id")
		if !slackUserIDRE.MatchString(u.SlackUserID) {
			v.ps.errorf(path, "%q is not a Slack member ID (U or W, then capital letters and digits: Slack shows it under Profile, Copy member ID)", u.SlackUserID)
		}
		if other, dup := seen[u.SlackUserID]; dup {
			v.ps.errorf(path, "users %q and %q have the same Slack member ID; a Slack user acts as one drguard user", other, u.Name)
		}
		seen[u.SlackUserID] = u.Name
		if !app {
			v.ps.warnf(path, "has no effect: no slack notifier has a bot_token, so no message carries buttons")
		}
	}
}

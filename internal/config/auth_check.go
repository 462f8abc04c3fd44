package config

import "fmt"

// MinTokenBytes is the shortest credential drguard accepts: a bearer token,
// a basic-auth password or a user's token. Sixteen random bytes cannot be
// guessed online; drguard's own example tokens are 32 hex digits or more.
const MinTokenBytes = 16

// credential is one secret drguard accepts, with where it is configured.
type credential struct {
	who   string // "the webhook", `user "alice"`
	path  string // the key holding it (the *_file key when it comes from a file)
	value Secret
}

// credentials lists the secrets of the auth section that are set.
func (a Auth) credentials() []credential {
	var out []credential
	add := func(who, base, key string, s Secret, file string) {
		if s == "" {
			return
		}
		if file != "" {
			key += "_file"
		}
		out = append(out, credential{who: who, path: joinPath(base, key), value: s})
	}
	add("the webhook", "auth.webhook", "bearer_token", a.Webhook.BearerToken, a.Webhook.BearerTokenFile)
	if ba := a.Webhook.BasicAuth; ba != nil {
		add("the webhook", "auth.webhook.basic_auth", "password", ba.Password, ba.PasswordFile)
	}
	for i, u := range a.Users {
		add(fmt.Sprintf("user %q", u.Name), indexPath("auth.users", i), "token", u.Token, u.TokenFile)
	}
	return out
}

// credentialStrength refuses credentials shorter than MinTokenBytes and
// warns when the webhook and a user share one: whoever holds the webhook's
// token (Alertmanager's configuration, its Secret) would then act as that
// user too. Two users with one token are an error in auth (the journal
// could not tell who decided). Messages never show a secret.
func (v *validator) credentialStrength() {
	creds := v.c.Auth.credentials()
	for _, c := range creds {
		if n := len(c.value.Reveal()); n < MinTokenBytes {
			v.ps.errorf(c.path, "the credential of %s is %d bytes long; use at least %d random bytes (e.g. openssl rand -hex 32)", c.who, n, MinTokenBytes)
		}
	}
	for i, a := range creds {
		for _, b := range creds[i+1:] {
			if a.who == "the webhook" && b.who != a.who && a.value == b.value {
				v.ps.warnf(b.path, "%s has the same credential as the webhook: Alertmanager's credential would also act as %s; give each its own", b.who, b.who)
			}
		}
	}
}

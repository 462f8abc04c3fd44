package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// Identity is an authenticated API caller.
type Identity struct {
	Name string
	Role config.Role
}

// Allows reports whether the identity's role includes want.
func (id Identity) Allows(want config.Role) bool {
	return roleRank[id.Role] >= roleRank[want]
}

var roleRank = map[config.Role]int{config.RoleViewer: 1, config.RoleApprover: 2, config.RoleAdmin: 3}

type digest [sha256.Size]byte

func hash(s string) digest { return sha256.Sum256([]byte(s)) }

// equal compares two digests in constant time. Comparing digests rather
// than the secrets keeps the time independent of the secrets' lengths.
func equal(a, b digest) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

type userCred struct {
	name  string
	nameD digest
	role  config.Role
	token digest
}

// Authenticator checks webhook and API credentials. It keeps only digests
// of the secrets and compares them in constant time.
type Authenticator struct {
	bearer    *digest
	basicUser *digest
	basicPass *digest
	users     []userCred
}

// NewAuthenticator builds an Authenticator from resolved configuration.
func NewAuthenticator(a config.Auth) *Authenticator {
	au := &Authenticator{}
	if t := a.Webhook.BearerToken.Reveal(); t != "" {
		d := hash(t)
		au.bearer = &d
	}
	if b := a.Webhook.BasicAuth; b != nil && b.Username != "" {
		u, p := hash(b.Username), hash(b.Password.Reveal())
		au.basicUser, au.basicPass = &u, &p
	}
	for _, u := range a.Users {
		if u.Token.Reveal() == "" {
			continue
		}
		au.users = append(au.users, userCred{name: u.Name, nameD: hash(u.Name), role: u.Role, token: hash(u.Token.Reveal())})
	}
	return au
}

// Webhook reports whether r carries the Alertmanager credentials: the
// bearer token or the basic-auth pair, as Alertmanager's http_config sends
// them.
func (a *Authenticator) Webhook(r *http.Request) bool {
	if tok, ok := bearer(r); ok && a.bearer != nil {
		return equal(hash(tok), *a.bearer)
	}
	if user, pass, ok := r.BasicAuth(); ok && a.basicUser != nil {
		u := equal(hash(user), *a.basicUser)
		p := equal(hash(pass), *a.basicPass)
		return u && p
	}
	return false
}

// User identifies an API caller from a bearer token, or from basic auth
// whose password is the user's token (so that a browser can follow an
// approval link). Every user is compared, so timing does not reveal which
// one matched.
func (a *Authenticator) User(r *http.Request) (Identity, bool) {
	tok, ok := bearer(r)
	name, byName := "", false
	if !ok {
		var pass string
		name, pass, byName = r.BasicAuth()
		if !byName {
			return Identity{}, false
		}
		tok = pass
	}
	return a.match(tok, name, byName)
}

// Token identifies the user whose token tok is (the console's sign-in),
// comparing every user in constant time as User does.
func (a *Authenticator) Token(tok string) (Identity, bool) { return a.match(tok, "", false) }

// match finds the user with token tok (and name, when byName).
func (a *Authenticator) match(tok, name string, byName bool) (Identity, bool) {
	td, nd := hash(tok), hash(name)
	var found Identity
	matched := false
	for _, u := range a.users {
		okTok := equal(td, u.token)
		okName := !byName || equal(nd, u.nameD)
		if okTok && okName && !matched {
			found, matched = Identity{Name: u.name, Role: u.role}, true
		}
	}
	return found, matched
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return strings.TrimSpace(h[len(prefix):]), true
	}
	return "", false
}

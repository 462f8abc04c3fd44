package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/server"
)

// Cookie names. Under TLS the session cookie takes the __Host- prefix, which
// browsers accept only with Secure, Path=/ and no Domain.
const (
	sessionCookie = "drguard_session"
	signinCookie  = "drguard_signin"
	// signinLifetime bounds how long a sign-in form may be submitted.
	signinLifetime = time.Hour
	// maxSignedOut bounds the sessions remembered as signed out.
	maxSignedOut = 10000
)

// session is what the session cookie carries, signed and encrypted with the
// server's key (securecookie: AES-256 and HMAC-SHA256, with its own
// timestamp checked against the lifetime).
type session struct {
	ID   string `json:"id"`
	User string `json:"user"`
	// TokenTag is a digest of the user's token at sign-in: a session ends
	// when the user's token changes.
	TokenTag string `json:"tag"`
	Expires  int64  `json:"exp"`
}

// account is a user as the console knows it.
type account struct {
	role     config.Role
	tokenTag string
}

// sessions issues and checks session cookies and CSRF tokens. It keeps no
// session on the server, so sign-ins survive a restart (with a configured
// key) and work on every replica sharing the key; sign-out is remembered
// (bounded, until the session would have expired) by this process.
type sessions struct {
	codec     *securecookie.SecureCookie
	csrfKey   []byte
	lifetime  time.Duration
	users     map[string]account
	signedOut *expirable.LRU[string, struct{}]
	secure    bool
	now       func() time.Time
}

// derive returns HMAC-SHA256(key, purpose): one key per use.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func tokenTag(tok string) string {
	d := sha256.Sum256([]byte("drguard session tag\x00" + tok))
	return hex.EncodeToString(d[:8])
}

func newSessions(key []byte, lifetime time.Duration, users []config.User, secure bool, now func() time.Time) *sessions {
	codec := securecookie.New(derive(key, "session mac"), derive(key, "session enc"))
	codec.SetSerializer(securecookie.JSONEncoder{})
	codec.MaxAge(int(lifetime / time.Second))
	s := &sessions{codec: codec, csrfKey: derive(key, "csrf"), lifetime: lifetime, users: map[string]account{},
		signedOut: expirable.NewLRU[string, struct{}](maxSignedOut, nil, lifetime), secure: secure, now: now}
	for _, u := range users {
		if tok := u.Token.Reveal(); tok != "" {
			s.users[u.Name] = account{role: u.Role, tokenTag: tokenTag(tok)}
		}
	}
	return s
}

func (s *sessions) cookieName(r *http.Request) string {
	if s.isSecure(r) {
		return "__Host-" + sessionCookie
	}
	return sessionCookie
}

func (s *sessions) isSecure(r *http.Request) bool { return s.secure || r.TLS != nil }

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start signs id in: a new session cookie, HttpOnly, SameSite=Strict,
// Secure under TLS, expiring with the session.
func (s *sessions) start(w http.ResponseWriter, r *http.Request, id server.Identity) error {
	acc, ok := s.users[id.Name]
	if !ok {
		return errors.New("unknown user")
	}
	exp := s.now().Add(s.lifetime)
	v, err := s.codec.Encode(s.cookieName(r), session{ID: randomID(), User: id.Name, TokenTag: acc.tokenTag, Expires: exp.Unix()})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(r), Value: v, Path: "/", Expires: exp, MaxAge: int(s.lifetime / time.Second),
		HttpOnly: true, Secure: s.isSecure(r), SameSite: http.SameSiteStrictMode})
	return nil
}

// user returns the identity and session of r's cookie, if valid: signed
// by this key, not expired, not signed out, and of a user whose token has
// not changed since.
func (s *sessions) user(r *http.Request) (server.Identity, session, bool) {
	c, err := r.Cookie(s.cookieName(r))
	if err != nil {
		return server.Identity{}, session{}, false
	}
	var sess session
	if err := s.codec.Decode(c.Name, c.Value, &sess); err != nil {
		return server.Identity{}, session{}, false
	}
	acc, ok := s.users[sess.User]
	switch {
	case !ok, s.now().Unix() >= sess.Expires, !hmac.Equal([]byte(acc.tokenTag), []byte(sess.TokenTag)):
		return server.Identity{}, session{}, false
	}
	if _, out := s.signedOut.Get(sess.ID); out {
		return server.Identity{}, session{}, false
	}
	return server.Identity{Name: sess.User, Role: acc.role}, sess, true
}

// end signs a session out and clears its cookie.
func (s *sessions) end(w http.ResponseWriter, r *http.Request, sess session) {
	s.signedOut.Add(sess.ID, struct{}{})
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.isSecure(r), SameSite: http.SameSiteStrictMode})
}

// csrf is the CSRF token of a session: its forms carry it, and a POST
// without it is refused. It is derived from the session's ID, so it needs
// no storage and dies with the session.
func (s *sessions) csrf(sess session) string {
	return base64.RawURLEncoding.EncodeToString(derive(s.csrfKey, "session\x00"+sess.ID))
}

// checkCSRF reports whether r's form carries sess's CSRF token.
func (s *sessions) checkCSRF(r *http.Request, sess session) bool {
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrf(sess)))
}

// signinToken sets, if needed, the sign-in cookie (a random nonce) and
// returns the CSRF token of the sign-in form, derived from it.
func (s *sessions) signinToken(w http.ResponseWriter, r *http.Request) string {
	nonce := ""
	if c, err := r.Cookie(signinCookie); err == nil && len(c.Value) >= 16 {
		nonce = c.Value
	} else {
		nonce = randomID()
		http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: nonce, Path: "/signin", MaxAge: int(signinLifetime / time.Second),
			HttpOnly: true, Secure: s.isSecure(r), SameSite: http.SameSiteStrictMode})
	}
	return base64.RawURLEncoding.EncodeToString(derive(s.csrfKey, "signin\x00"+nonce))
}

// checkSignin reports whether r's sign-in form carries the token of its
// sign-in cookie.
func (s *sessions) checkSignin(r *http.Request) bool {
	c, err := r.Cookie(signinCookie)
	if err != nil || len(c.Value) < 16 {
		return false
	}
	want := base64.RawURLEncoding.EncodeToString(derive(s.csrfKey, "signin\x00"+c.Value))
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(want))
}

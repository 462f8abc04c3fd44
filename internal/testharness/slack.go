package testharness

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// SlackAPI is a fake of Slack's Web API at the HTTP level, for the methods
// drguard calls: chat.postMessage, chat.update and chat.postEphemeral. It
// checks the bot token as Slack does (invalid_auth otherwise), records
// every call, and answers as Slack does, with a channel and a message
// timestamp. Point a notifier's api_url at URL.
type SlackAPI struct {
	URL   string
	token string

	mu    sync.Mutex
	calls []SlackCall
	next  int
}

// SlackCall is one call to the fake.
type SlackCall struct {
	Method string
	Form   url.Values
}

// Blocks decodes the call's Block Kit blocks.
func (c SlackCall) Blocks() []map[string]any {
	var b []map[string]any
	_ = json.Unmarshal([]byte(c.Form.Get("blocks")), &b)
	return b
}

// NewSlackAPI serves the fake until the test ends; calls must carry token.
func NewSlackAPI(t testing.TB, token string) *SlackAPI {
	t.Helper()
	s := &SlackAPI{token: token}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/api/"
	return s
}

func (s *SlackAPI) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	tok := r.PostForm.Get("token")
	if h := r.Header.Get("Authorization"); tok == "" && strings.HasPrefix(h, "Bearer ") {
		tok = strings.TrimPrefix(h, "Bearer ")
	}
	if !hmac.Equal([]byte(tok), []byte(s.token)) {
		_, _ = fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, SlackCall{Method: method, Form: r.PostForm})
	s.next++
	ts := fmt.Sprintf("1700000000.%06d", s.next)
	s.mu.Unlock()
	channel := r.PostForm.Get("channel")
	var answer map[string]any
	switch method {
	case "chat.postMessage":
		answer = map[string]any{"ok": true, "channel": channel, "ts": ts, "message": map[string]any{"text": r.PostForm.Get("text"), "ts": ts}}
	case "chat.update":
		answer = map[string]any{"ok": true, "channel": channel, "ts": r.PostForm.Get("ts"), "text": r.PostForm.Get("text")}
	case "chat.postEphemeral":
		answer = map[string]any{"ok": true, "message_ts": ts}
	default:
		answer = map[string]any{"ok": false, "error": "unknown_method"}
	}
	_ = json.NewEncoder(w).Encode(answer)
}

// Calls returns the calls of one method ("" for all), in order.
func (s *SlackAPI) Calls(method string) []SlackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SlackCall
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// SlackSignature signs a request body as Slack does for a signing secret
// at time ts, and returns the headers to send with it.
func SlackSignature(secret string, ts time.Time, body []byte) map[string]string {
	stamp := fmt.Sprint(ts.Unix())
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:", stamp)
	m.Write(body)
	return map[string]string{
		"X-Slack-Request-Timestamp": stamp,
		"X-Slack-Signature":         "v0=" + hex.EncodeToString(m.Sum(nil)),
		"Content-Type":              "application/x-www-form-urlencoded",
	}
}

package action

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// SMTPMessage is one mail a test SMTP server accepted.
type SMTPMessage struct {
	From string
	To   []string
	Data string
	Auth string // the decoded AUTH PLAIN identity\0user\0password
}

// SMTPServer is a tiny SMTP server for tests: EHLO, AUTH PLAIN, MAIL,
// RCPT, DATA, QUIT, no TLS.
type SMTPServer struct {
	Addr string
	ln   net.Listener

	mu   sync.Mutex
	msgs []SMTPMessage
}

// NewSMTPServer listens on 127.0.0.1 until the test ends.
func NewSMTPServer(t testing.TB) *SMTPServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTPServer{Addr: ln.Addr().String(), ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return s
}

// Messages returns the accepted messages so far.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMTPMessage(nil), s.msgs...)
}

func (s *SMTPServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { _, _ = io.WriteString(c, line+"\r\n") }
	say("220 localhost ESMTP drguard-test")
	var m SMTPMessage
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case verb == "EHLO" || verb == "HELO":
			say("250-localhost")
			say("250-AUTH PLAIN")
			say("250 8BITMIME")
		case verb == "AUTH":
			parts := strings.Fields(line)
			raw, _ := base64.StdEncoding.DecodeString(parts[len(parts)-1])
			m.Auth = string(raw)
			say("235 2.7.0 Authentication successful")
		case strings.HasPrefix(strings.ToUpper(line), "MAIL FROM:"):
			m.From = angle(line)
			say("250 OK")
		case strings.HasPrefix(strings.ToUpper(line), "RCPT TO:"):
			m.To = append(m.To, angle(line))
			say("250 OK")
		case verb == "DATA":
			say("354 End data with <CR><LF>.<CR><LF>")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			m.Data = data.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			m = SMTPMessage{Auth: m.Auth}
			say("250 OK queued")
		case verb == "QUIT":
			say("221 Bye")
			return
		case verb == "RSET" || verb == "NOOP":
			say("250 OK")
		default:
			say("502 Command not implemented")
		}
	}
}

// angle returns the <address> of a MAIL or RCPT command.
func angle(line string) string {
	_, rest, _ := strings.Cut(line, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}

// NotifyConfig is a configuration with a slack, a webhook and an email
// notifier delivering to sink and smtp, and service fruitfulplanet with a
// 4h RTO.
func NotifyConfig(sink *testharness.HTTPSink, smtp *SMTPServer) *config.Config {
	return &config.Config{
		Server:     config.Server{ExternalURL: "https://drguard.example/"},
		Objectives: map[string]config.Objective{"fruitfulplanet": {RPO: model.Duration(time.Hour), RTO: model.Duration(4 * time.Hour)}},
		Notifiers: []config.Notifier{
			{Name: "slack-incidents", Type: config.NotifierSlack, URL: config.Secret(sink.URL + "/services/T0/B0/SECRETPART")},
			{Name: "status-page", Type: config.NotifierWebhook, URL: config.Secret(sink.URL + "/status"), BearerToken: "status-token"},
			{Name: "email-incidents", Type: config.NotifierEmail, Smarthost: smtp.Addr, From: "drguard@fruitfulplanet.com",
				To: []string{"incidents@fruitfulplanet.com"}, Username: "drguard", Password: "smtp-pw"},
		},
	}
}

func TestNotifyActions(t *testing.T) {
	sink, mail := testharness.NewHTTPSink(t), NewSMTPServer(t)
	cfg := NotifyConfig(sink, mail)
	started := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	req := Request{RunID: "run-1", Step: "tell", Policy: "database-failure",
		Labels:      map[string]string{"service": "fruitfulplanet", "scenario": "database_failure", "severity": "critical"},
		Annotations: map[string]string{"summary": "a database outage"},
		Params:      map[string]any{"status": "Restarting the database", "started_at": started.Format(time.RFC3339), "incident": "inc-000007"},
	}
	wantBody := []string{
		"We are currently experiencing a database outage.", "Our team is actively working on resolution.",
		"Current Status: Restarting the database",
		"Expected Resolution: by " + started.Add(4*time.Hour).Format("2006-01-02 15:04 UTC") + " (recovery time objective 4h)",
		"We apologize for the inconvenience.", "Details: https://drguard.example/incidents/inc-000007",
	}
	run := func(name string) Outcome {
		t.Helper()
		a, err := Registry[name].New(Deps{Config: cfg})
		must(t, err)
		must(t, a.Validate(req.Params))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := a.Run(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out
	}

	out := run("notify.slack")
	slack := sink.Requests("/services/T0/B0/SECRETPART")
	if len(slack) != 1 {
		t.Fatalf("slack requests = %d", len(slack))
	}
	var sp struct{ Text string }
	must(t, json.Unmarshal([]byte(slack[0].Body), &sp))
	wantAll(t, sp.Text, append(wantBody, "*Service Status Update*")...)
	if strings.Contains(out.Output+out.Result["notifier"].(string), "SECRETPART") {
		t.Error("the Slack webhook URL leaked into the outcome")
	}

	run("notify.webhook")
	hook := sink.Requests("/status")
	if len(hook) != 1 || hook[0].Authorization != "Bearer status-token" {
		t.Fatalf("webhook requests = %+v", hook)
	}
	var wp WebhookPayload
	must(t, json.Unmarshal([]byte(hook[0].Body), &wp))
	if wp.Subject != "Service Status Update" || wp.Status != "Restarting the database" || wp.Resolved ||
		wp.Incident.ID != "inc-000007" || wp.Incident.Service != "fruitfulplanet" || !wp.Incident.StartedAt.Equal(started) {
		t.Errorf("webhook payload = %+v", wp)
	}
	wantAll(t, wp.Text, wantBody...)

	run("notify.email")
	msgs := mail.Messages()
	if len(msgs) != 1 {
		t.Fatalf("mails = %d", len(msgs))
	}
	m := msgs[0]
	if m.From != "drguard@fruitfulplanet.com" || len(m.To) != 1 || m.To[0] != "incidents@fruitfulplanet.com" || m.Auth != "\x00drguard\x00smtp-pw" {
		t.Errorf("envelope = %+v", m)
	}
	wantAll(t, m.Data, append(wantBody, "Subject: Service Status Update\r\n", "X-Drguard-Incident: inc-000007")...)

	req.Params = map[string]any{"resolved": true, "started_at": started.Format(time.RFC3339)}
	run("notify.slack")
	slack = sink.Requests("/services/T0/B0/SECRETPART")
	must(t, json.Unmarshal([]byte(slack[1].Body), &sp))
	wantAll(t, sp.Text, "*Service Status Update: resolved*", "The issue we were experiencing (a database outage) has been resolved.", "Current Status: Resolved", "Duration: 10m")
}

func TestNotifyErrorsHideTheURL(t *testing.T) {
	sink, mail := testharness.NewHTTPSink(t), NewSMTPServer(t)
	sink.Status = http.StatusNotFound
	a, _ := Registry["notify.slack"].New(Deps{Config: NotifyConfig(sink, mail)})
	_, err := a.Run(context.Background(), Request{Params: map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), "notifier slack-incidents (slack): POST: HTTP 404 Not Found") || strings.Contains(err.Error(), "SECRETPART") {
		t.Errorf("err = %v", err)
	}
	cfg := NotifyConfig(sink, mail)
	cfg.Notifiers = append(cfg.Notifiers, config.Notifier{Name: "slack-2", Type: config.NotifierSlack, URL: "http://x"})
	a, _ = Registry["notify.slack"].New(Deps{Config: cfg})
	if _, err := a.Run(context.Background(), Request{Params: map[string]any{}}); err == nil || !strings.Contains(err.Error(), `several slack notifiers are configured (slack-incidents, slack-2): set param "notifier"`) {
		t.Errorf("ambiguous: %v", err)
	}
	a, _ = Registry["notify.email"].New(Deps{Config: cfg})
	if _, err := a.Run(context.Background(), Request{Params: map[string]any{"notifier": "slack-2"}}); err == nil || !strings.Contains(err.Error(), `notifier "slack-2" is of type slack, not email`) {
		t.Errorf("wrong type: %v", err)
	}
}

func TestNotifyValidate(t *testing.T) {
	a, _ := Registry["notify.slack"].New(Deps{})
	if err := a.Validate(map[string]any{"status": "x", "started_at": "{{ .Incident.StartsAt }}", "resolved": false}); err != nil {
		t.Error(err)
	}
	if err := a.Validate(map[string]any{"text": "x"}); err == nil || !strings.Contains(err.Error(), `param "text": unknown key`) {
		t.Errorf("unknown param: %v", err)
	}
	if err := a.Validate(map[string]any{"started_at": "noon"}); err == nil {
		t.Error("a bad started_at was accepted")
	}
}

func wantAll(t *testing.T, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("want %q in:\n%s", w, text)
		}
	}
}

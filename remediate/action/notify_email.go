package action

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// sendEmail sends the notice through the notifier's SMTP relay: implicit
// TLS on port 465, else STARTTLS when the relay offers it (required with
// require_tls), PLAIN authentication when a username is set. The whole
// exchange is bounded by ctx's deadline.
func (n *Notifiers) sendEmail(ctx context.Context, nc config.Notifier, notice Notice) error {
	host, port, err := net.SplitHostPort(nc.Smarthost)
	if err != nil {
		return fmt.Errorf("smarthost %q is not host:port", nc.Smarthost)
	}
	msg, err := emailMessage(nc, notice)
	if err != nil {
		return err
	}
	conn, err := n.dialer.DialContext(ctx, "tcp", nc.Smarthost)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", nc.Smarthost, transportError(err))
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	// Close the connection when ctx ends, so a hung relay cannot block.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	tlsConfig := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if port == "465" {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS with %s: %w", nc.Smarthost, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return smtpError(ctx, "greeting", err)
	}
	defer c.Close()
	if err := c.Hello("drguard"); err != nil {
		return smtpError(ctx, "EHLO", err)
	}
	if port != "465" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return smtpError(ctx, "STARTTLS", err)
			}
		} else if nc.RequireTLS {
			return fmt.Errorf("%s does not offer STARTTLS and require_tls is set; not sending", nc.Smarthost)
		}
	}
	if nc.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", nc.Username, nc.Password.Reveal(), host)); err != nil {
			return smtpError(ctx, "AUTH as "+nc.Username, err)
		}
	}
	from, _ := mail.ParseAddress(nc.From)
	if err := c.Mail(from.Address); err != nil {
		return smtpError(ctx, "MAIL FROM", err)
	}
	for _, to := range nc.To {
		addr, err := mail.ParseAddress(to)
		if err != nil {
			return fmt.Errorf("recipient %q is not an email address", to)
		}
		if err := c.Rcpt(addr.Address); err != nil {
			return smtpError(ctx, "RCPT TO "+addr.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpError(ctx, "DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpError(ctx, "message", err)
	}
	if err := w.Close(); err != nil {
		return smtpError(ctx, "end of message", err)
	}
	if err := c.Quit(); err != nil {
		return smtpError(ctx, "QUIT", err)
	}
	return nil
}

// emailMessage builds the RFC 5322 message: plain UTF-8 text, the
// notice's subject, drguard as the mailer.
func emailMessage(nc config.Notifier, notice Notice) ([]byte, error) {
	from, err := mail.ParseAddress(nc.From)
	if err != nil {
		return nil, fmt.Errorf("from %q is not an email address", nc.From)
	}
	to := make([]string, 0, len(nc.To))
	for _, t := range nc.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("recipient %q is not an email address", t)
		}
		to = append(to, a.String())
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", notice.Subject))
	header("Date", notice.SentAt.UTC().Format(time.RFC1123Z))
	header("Message-ID", fmt.Sprintf("<%s@%s>", hex.EncodeToString(id), domain))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	header("X-Mailer", "drguard")
	if notice.IncidentID != "" {
		header("X-Drguard-Incident", notice.IncidentID)
	}
	b.WriteString("\r\n")
	body := strings.ReplaceAll(notice.Text(), "\r\n", "\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return b.Bytes(), nil
}

// smtpError words an SMTP failure; a server's reply never contains the
// password (PLAIN sends it, the reply does not echo it).
func smtpError(ctx context.Context, stage string, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("SMTP %s: timed out", stage)
	}
	return fmt.Errorf("SMTP %s: %v", stage, err)
}

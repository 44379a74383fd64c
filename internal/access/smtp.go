package access

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"
)

// TLSMode says how the SMTP mailer protects its connection.
type TLSMode int

// TLS modes.
const (
	// TLSStartTLS upgrades with STARTTLS when the server offers it; a
	// password is only ever sent over TLS.
	TLSStartTLS TLSMode = iota
	// TLSRequired refuses a server that does not offer STARTTLS.
	TLSRequired
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit
	// TLSInsecure never uses TLS and sends PLAIN credentials in the
	// clear: only for a relay on localhost (and tests).
	TLSInsecure
)

// SMTP is a Mailer that delivers through an SMTP server.
type SMTP struct {
	addr, from, user, password string
	mode                       TLSMode
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (for
	// example a private root CA); ServerName defaults to addr's host.
	TLSConfig *tls.Config
}

// NewSMTP returns a Mailer for the server at addr (host:port), sending
// as from; user and password, when set, authenticate with PLAIN.
func NewSMTP(addr, from, user, password string, mode TLSMode) (*SMTP, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("access: SMTP address %q: want host:port", addr)
	}
	if a, err := mail.ParseAddress(from); err != nil || a.Address != from {
		return nil, fmt.Errorf("access: SMTP sender %q is not a bare e-mail address", from)
	}
	if mode < TLSStartTLS || mode > TLSInsecure {
		return nil, fmt.Errorf("access: unknown SMTP TLS mode %d", mode)
	}
	return &SMTP{addr: addr, from: from, user: user, password: password, mode: mode}, nil
}

// ErrCleartextAuth: the server offered no TLS and a password would have
// gone in the clear.
var ErrCleartextAuth = errors.New("access: SMTP server offers no TLS: refusing to send the password in the clear")

// Send delivers one message to the recipients.
func (m *SMTP) Send(ctx context.Context, to []string, subject, body string) error {
	if len(to) == 0 {
		return nil
	}
	for _, a := range to {
		if p, err := mail.ParseAddress(a); err != nil || p.Address != a {
			return fmt.Errorf("access: recipient %q is not a bare e-mail address", a)
		}
	}
	host, _, _ := net.SplitHostPort(m.addr)
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.TLSConfig != nil {
		tcfg = m.TLSConfig.Clone()
	}
	if tcfg.ServerName == "" {
		tcfg.ServerName = host
	}
	d := net.Dialer{Timeout: 15 * time.Second}
	var conn net.Conn
	var err error
	if m.mode == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: tcfg}).DialContext(ctx, "tcp", m.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", m.addr)
	}
	if err != nil {
		return fmt.Errorf("access: SMTP: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(60 * time.Second))
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("access: SMTP: %w", err)
	}
	defer c.Close()
	secure := m.mode == TLSImplicit
	if !secure && m.mode != TLSInsecure {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tcfg); err != nil {
				return fmt.Errorf("access: SMTP STARTTLS: %w", err)
			}
			secure = true
		} else if m.mode == TLSRequired {
			return fmt.Errorf("access: SMTP server %s does not offer STARTTLS", m.addr)
		}
	}
	if m.user != "" {
		if !secure && m.mode != TLSInsecure {
			return ErrCleartextAuth
		}
		if err := c.Auth(plainAuth{m.user, m.password}); err != nil {
			return fmt.Errorf("access: SMTP authentication: %w", err)
		}
	}
	if err := c.Mail(m.from); err != nil {
		return fmt.Errorf("access: SMTP MAIL FROM: %w", err)
	}
	for _, a := range to {
		if err := c.Rcpt(a); err != nil {
			return fmt.Errorf("access: SMTP RCPT TO: %w", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("access: SMTP DATA: %w", err)
	}
	if _, err := w.Write(message(m.from, to, subject, body)); err != nil {
		return fmt.Errorf("access: SMTP DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("access: SMTP DATA: %w", err)
	}
	return c.Quit()
}

// message formats a plain-text e-mail.
func message(from string, to []string, subject, body string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(to, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", cleanHeader(subject)))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	body = strings.ReplaceAll(body, "\r\n", "\n")
	for _, l := range strings.Split(body, "\n") {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// plainAuth is SASL PLAIN; Send only uses it over TLS, or in the clear
// when the mode says so (net/smtp's PlainAuth would refuse the latter
// for any host but localhost).
type plainAuth struct{ user, password string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge")
	}
	return nil, nil
}

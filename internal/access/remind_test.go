package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"mime"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestReminders: representatives who do not answer are reminded once per
// period, only for datasets waiting on them; the admins are told once
// after EscalateAfter. The clock is fake; the mail is real.
func TestReminders(t *testing.T) {
	w := newWorld(t, t.TempDir()+"/hub.db", Config{RemindAfter: 72 * time.Hour, EscalateAfter: 7 * 24 * time.Hour})
	ctx := context.Background()
	id := w.negotiating(t, dsA, dsB, dsC)
	// B waits on the researcher (conditions), C is decided: only A's
	// representatives owe an answer.
	w.must(t, 200, "repB", "POST", decisionPath(id, dsB), map[string]string{"decision": "conditions", "message": "Sign the agreement."}, nil)
	w.must(t, 200, "repC", "POST", decisionPath(id, dsC), map[string]string{"decision": "decline"}, nil)
	w.mail.reset()

	tick := func() {
		t.Helper()
		if err := w.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	count := func(addr string, word string) int {
		n := 0
		for _, s := range w.mail.to(addr) {
			if strings.Contains(s, word) {
				n++
			}
		}
		return n
	}

	w.clock.add(71 * time.Hour)
	tick()
	if n := len(w.mail.all()); n != 0 {
		t.Fatalf("%d mails before RemindAfter: %+v", n, w.mail.all())
	}
	w.clock.add(time.Hour)
	tick()
	tick() // once per period, however often the hub ticks
	if n := count("repa@example.org", "Reminder"); n != 1 {
		t.Errorf("A's representative got %d reminders at 72h, want 1", n)
	}
	for _, addr := range []string{"repb@example.org", "repb2@example.org", "repc@example.org", "alice@example.org", "root@example.org"} {
		if got := w.mail.to(addr); len(got) != 0 {
			t.Errorf("%s got %q at 72h", addr, got)
		}
	}
	w.clock.add(71 * time.Hour)
	tick()
	if n := count("repa@example.org", "Reminder"); n != 1 {
		t.Errorf("reminded again within the period: %d", n)
	}
	w.clock.add(time.Hour)
	tick()
	if n := count("repa@example.org", "Reminder"); n != 2 {
		t.Errorf("%d reminders at 144h, want 2", n)
	}
	if got := w.mail.to("root@example.org"); len(got) != 0 {
		t.Errorf("escalated before EscalateAfter: %q", got)
	}
	w.clock.add(24 * time.Hour) // 168h = 7 days
	tick()
	tick()
	if got := w.mail.to("root@example.org"); len(got) != 1 || !strings.Contains(got[0], "waiting") {
		t.Errorf("admin got %q at 7 days, want one escalation", got)
	}
	if got := w.mail.to("repb@example.org"); len(got) != 0 {
		t.Errorf("B's representative (waiting on the researcher) got %q", got)
	}

	// A decision resets the clock of that dataset.
	w.must(t, 200, "repA", "POST", decisionPath(id, dsA), map[string]string{"decision": "checking"}, nil)
	w.mail.reset()
	w.clock.add(71 * time.Hour)
	tick()
	if n := len(w.mail.all()); n != 0 {
		t.Errorf("%d mails within RemindAfter of the last decision", n)
	}
	w.clock.add(time.Hour)
	tick()
	if n := count("repa@example.org", "Reminder"); n != 1 {
		t.Errorf("%d reminders after the decision's period, want 1", n)
	}
}

// TestBadInput: malformed requests get 400 (or 413) with a clear error,
// never a panic, and nothing is stored.
func TestBadInput(t *testing.T) {
	w := newWorld(t, t.TempDir()+"/hub.db", Config{MaxDays: 100})
	with := func(k string, v any) map[string]any {
		in := newInput(dsA)
		if v == nil {
			delete(in, k)
		} else {
			in[k] = v
		}
		return in
	}
	cases := []struct {
		name string
		body any
		want int
		msg  string
	}{
		{"not JSON", "{", 400, "JSON"},
		{"two values", `{"title":"x"} {}`, 400, "more than one"},
		{"unknown field", with("budget", 5), 400, "unknown field"},
		{"too large", strings.Repeat(" ", maxBody+10) + "{}", 413, "larger"},
		{"no title", with("title", nil), 400, "title"},
		{"two-line title", with("title", "a\nb"), 400, "title"},
		{"no description", with("description", "  "), 400, "description"},
		{"unknown DUO", with("duo", []string{"DUO:9999999"}), 400, "DUO"},
		{"no query", with("query", nil), 400, "query"},
		{"bad query", with("query", map[string]any{"operand": "XOR"}), 400, "query"},
		{"no datasets", with("datasets", []Dataset{}), 400, "dataset"},
		{"unknown dataset", with("datasets", []Dataset{{"node-a", "heart"}}), 400, "catalogue"},
		{"bad node name", with("datasets", []Dataset{{"../etc", "lung"}}), 400, "valid"},
		{"slash in dataset", with("datasets", []Dataset{{"node-a", "lu/ng"}}), 400, "valid"},
		{"dataset twice", with("datasets", []Dataset{dsA, dsA}), 400, "twice"},
		{"no operations", with("operations", []string{}), 400, "operation"},
		{"unknown operation", with("operations", []string{"delete"}), 400, "operation"},
		{"zero days", with("days", 0), 400, "days"},
		{"too many days", with("days", 101), 400, "1..100"},
	}
	for _, c := range cases {
		got, msg := w.call(t, "alice", "POST", "/api/v1/access-requests", c.body, nil)
		if got != c.want || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %q, want %d mentioning %q", c.name, got, msg, c.want, c.msg)
		}
	}
	var l struct{ Requests []Request }
	w.must(t, 200, "alice", "GET", "/api/v1/access-requests?list=mine", nil, &l)
	if len(l.Requests) != 0 {
		t.Errorf("bad requests were stored: %+v", l.Requests)
	}

	id := w.negotiating(t, dsA)
	base := "/api/v1/access-requests/" + id
	for _, c := range []struct {
		name, path string
		body       any
		msg        string
	}{
		{"unknown decision", decisionPath(id, dsA), map[string]string{"decision": "maybe"}, "decision"},
		{"conditions without text", decisionPath(id, dsA), map[string]string{"decision": "conditions"}, "conditions"},
		{"decision with extra field", decisionPath(id, dsA), map[string]any{"decision": "approve", "force": true}, "unknown field"},
		{"body on submit", base + "/submit", map[string]any{"now": true}, "no body"},
		{"notification id", "/api/v1/notifications/x/read", nil, "number"},
	} {
		user := "repA"
		if strings.HasSuffix(c.path, "/submit") || strings.Contains(c.path, "notifications") {
			user = "alice"
		}
		if got, msg := w.call(t, user, "POST", c.path, c.body, nil); got != 400 || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %q, want 400 mentioning %q", c.name, got, msg, c.msg)
		}
	}
	if got, msg := w.call(t, "root", "POST", "/api/v1/access-requests/nope/review", map[string]string{"decision": "approve"}, nil); got != 404 {
		t.Errorf("review of a missing request: %d %q", got, msg)
	}
	var terms []DUOTerm
	w.must(t, 200, "", "GET", "/api/v1/access-requests/duo", nil, &terms)
	if len(terms) < 10 {
		t.Errorf("DUO list: %+v", terms)
	}
}

// selfSigned makes a TLS certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestSMTP: the mailer upgrades with STARTTLS and authenticates over
// TLS, never sends a password in the clear unless told to, and delivers
// what it is given to the recipients named.
func TestSMTP(t *testing.T) {
	ctx := context.Background()
	cert, pool := selfSigned(t)

	t.Run("starttls and auth", func(t *testing.T) {
		mb := newMailbox(t, func(s *smtp.Server) {
			s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			s.AllowInsecureAuth = false
		})
		mb.user, mb.password = "hub", "s3cret"
		m, err := NewSMTP(mb.addr, "hub@example.org", "hub", "s3cret", TLSRequired)
		if err != nil {
			t.Fatal(err)
		}
		m.TLSConfig = &tls.Config{RootCAs: pool}
		if err := m.Send(ctx, []string{"a@example.org"}, "Hello\r\nBcc: x@evil.example", "line one\nline two"); err != nil {
			t.Fatal(err)
		}
		got := mb.all()
		if len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "a@example.org" || got[0].From != "hub@example.org" {
			t.Fatalf("delivered %+v", got)
		}
		if strings.Contains(got[0].Data, "\r\nBcc:") || !strings.Contains(got[0].Data, "line two") {
			t.Errorf("message %q", got[0].Data)
		}
		if subj, err := new(mime.WordDecoder).DecodeHeader(got[0].Subject); err != nil || strings.ContainsAny(subj, "\r\n") {
			t.Errorf("subject %q decodes to %q (%v), want one line", got[0].Subject, subj, err)
		}
		// A wrong certificate authority is refused.
		m.TLSConfig = nil
		if err := m.Send(ctx, []string{"a@example.org"}, "x", "y"); err == nil {
			t.Error("sent over TLS to a server whose certificate is not trusted")
		}
	})

	t.Run("no password in the clear", func(t *testing.T) {
		mb := newMailbox(t, nil)
		m, _ := NewSMTP(mb.addr, "hub@example.org", "hub", "s3cret", TLSStartTLS)
		if err := m.Send(ctx, []string{"a@example.org"}, "x", "y"); !errors.Is(err, ErrCleartextAuth) {
			t.Errorf("Send without TLS: %v, want ErrCleartextAuth", err)
		}
		m, _ = NewSMTP(mb.addr, "hub@example.org", "", "", TLSRequired)
		if err := m.Send(ctx, []string{"a@example.org"}, "x", "y"); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("TLSRequired without STARTTLS: %v", err)
		}
		if n := len(mb.all()); n != 0 {
			t.Errorf("%d mails delivered", n)
		}
		// Insecure mode, for a relay on localhost, authenticates in the clear.
		mb.user, mb.password = "hub", "s3cret"
		m, _ = NewSMTP(mb.addr, "hub@example.org", "hub", "s3cret", TLSInsecure)
		if err := m.Send(ctx, []string{"a@example.org"}, "x", "y"); err != nil {
			t.Errorf("insecure mode: %v", err)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		if _, err := NewSMTP("localhost", "hub@example.org", "", "", TLSStartTLS); err == nil {
			t.Error("an address without a port was accepted")
		}
		if _, err := NewSMTP("localhost:25", "Hub <hub@example.org>", "", "", TLSStartTLS); err == nil {
			t.Error("a sender with a display name was accepted")
		}
		mb := newMailbox(t, nil)
		m, _ := NewSMTP(mb.addr, "hub@example.org", "", "", TLSInsecure)
		if err := m.Send(ctx, []string{"a@example.org>\r\nRCPT TO:<b@example.org"}, "x", "y"); err == nil || !strings.Contains(err.Error(), "recipient") {
			t.Errorf("a recipient with a line break: %v", err)
		}
		if n := len(mb.all()); n != 0 {
			t.Errorf("%d mails delivered", n)
		}
	})
}

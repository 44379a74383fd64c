package hub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// testClock is a settable clock for throttling tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// throttleHub opens a hub on a settable clock with the user alice.
func throttleHub(t *testing.T) (*Hub, *testClock) {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)}
	h, err := Open(context.Background(), Config{Data: t.TempDir(), NATSListen: "127.0.0.1:0", Clock: clock.now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.AddUser(context.Background(), "alice", "long enough password", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	return h, clock
}

// serve sends one request to the hub's handler from remote.
func serve(h *Hub, req *http.Request, remote string) *httptest.ResponseRecorder {
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, req)
	return rec
}

func apiLogin(h *Hub, user, pw, remote string) *httptest.ResponseRecorder {
	body := `{"user":"` + user + `","password":"` + pw + `"}`
	return serve(h, httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(body)), remote)
}

// TestAPILoginThrottled: 40 wrong passwords from one address, then the
// right one is refused with 429 and Retry-After without being checked;
// the owner logs in from another address meanwhile; the wait expires with
// the clock; the lockout is audited without the password.
func TestAPILoginThrottled(t *testing.T) {
	h, clock := throttleHub(t)
	const attacker = "203.0.113.5:40000"
	codes := map[int]int{}
	for range 40 {
		codes[apiLogin(h, "alice", "guess-guess-guess", attacker).Code]++
	}
	if codes[401] != 5 || codes[429] != 35 {
		t.Errorf("40 wrong passwords: %v, want 5 checked (401) and 35 refused (429)", codes)
	}
	rec := apiLogin(h, "alice", "long enough password", attacker)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("right password after 40 wrong: %d, Retry-After %q; want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if !strings.Contains(rec.Body.String(), "try again in 1 s") {
		t.Errorf("429 body: %s", rec.Body)
	}
	// The owner, from another address, is not held up.
	if rec := apiLogin(h, "alice", "long enough password", "198.51.100.7:5000"); rec.Code != 200 {
		t.Errorf("owner from another address during the attack: %d %s", rec.Code, rec.Body)
	}
	clock.add(time.Second)
	if rec := apiLogin(h, "alice", "long enough password", attacker); rec.Code != 200 {
		t.Errorf("right password once the wait is over: %d %s", rec.Code, rec.Body)
	}
	b, err := os.ReadFile(filepath.Join(h.cfg.Data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"action":"login-throttled"`)) || !bytes.Contains(b, []byte(`"subject":"alice"`)) {
		t.Errorf("audit log has no lockout of alice:\n%s", b)
	}
	if bytes.Contains(b, []byte("guess-guess")) || bytes.Contains(b, []byte("long enough")) {
		t.Error("audit log holds a password")
	}
}

// TestAPILoginBackoffCapped: the waits double up to the cap, and a wait
// at the cap ends.
func TestAPILoginBackoffCapped(t *testing.T) {
	h, clock := throttleHub(t)
	const attacker = "203.0.113.6:1"
	var last string
	for range 40 {
		rec := apiLogin(h, "alice", "wrong wrong wrong", attacker)
		if rec.Code == 429 {
			last = rec.Header().Get("Retry-After")
			clock.add(10 * time.Minute)
		}
	}
	if last != "300" {
		t.Errorf("after 20 failures and waits Retry-After %s, want 300 (the 5 min cap)", last)
	}
}

// TestWebLoginThrottled: the web form shows a notice and checks no
// password during the wait.
func TestWebLoginThrottled(t *testing.T) {
	h, clock := throttleHub(t)
	post := func(pw string) *httptest.ResponseRecorder {
		form := url.Values{"user": {"alice"}, "password": {pw}, "next": {"/"}}
		req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return serve(h, req, "203.0.113.9:1234")
	}
	for range 5 {
		if rec := post("not the password"); rec.Code != 401 {
			t.Fatalf("wrong password: %d", rec.Code)
		}
	}
	rec := post("long enough password")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("right password during the wait: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	body := rec.Body.String()
	for _, want := range []string{"Too many failed log-ins", "try again in 1 second", "Your password was not checked", `role="alert"`} {
		if !strings.Contains(body, want) {
			t.Errorf("notice lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "long enough password") {
		t.Error("the page repeats the password")
	}
	clock.add(time.Second)
	if rec := post("long enough password"); rec.Code != http.StatusSeeOther {
		t.Errorf("after the wait: %d", rec.Code)
	}
}

// TestNATSLoginThrottled: wrong NATS passwords for a node name from one
// address make the right one wait too; the node from another address
// still connects; the wait expires.
func TestNATSLoginThrottled(t *testing.T) {
	h, clock := throttleHub(t)
	f := enrollFake(t, h, "north")
	from := func(ip string) nats.Option {
		return nats.SetCustomDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second})
	}
	connect := func(pw, ip string) error {
		nc, err := nats.Connect(h.NATSURL(), nats.UserInfo("north", pw), nats.MaxReconnects(0), from(ip), nodeTLS(t, h, f.key))
		if err == nil {
			nc.Close()
		}
		return err
	}
	for range 5 {
		if connect("wrong", "127.0.0.1") == nil {
			t.Fatal("wrong NATS password accepted")
		}
	}
	if connect(f.pass, "127.0.0.1") == nil {
		t.Error("the right password was accepted during the wait")
	}
	if _, w := h.nodeLogins.Begin("north", "127.0.0.1"); w != time.Second {
		t.Errorf("wait %s, want 1s", w)
	}
	if err := connect(f.pass, "127.0.0.2"); err != nil {
		t.Errorf("the node from another address: %v", err)
	}
	clock.add(time.Second)
	if err := connect(f.pass, "127.0.0.1"); err != nil {
		t.Errorf("after the wait: %v", err)
	}
}

// TestAPILoginDistributedAttack: guesses at one account from many
// addresses bring the per-account wait into play for addresses that have
// failed, never beyond the cap, while the owner from a clean address logs
// in at once.
func TestAPILoginDistributedAttack(t *testing.T) {
	h, clock := throttleHub(t)
	refused := 0
	for i := range 30 {
		for range 2 {
			rec := apiLogin(h, "alice", "guess guess guess", fmt.Sprintf("198.51.100.%d:1000", i))
			if rec.Code == 429 {
				refused++
				if s, _ := strconv.Atoi(rec.Header().Get("Retry-After")); s < 1 || s > 300 {
					t.Errorf("Retry-After %q beyond the cap", rec.Header().Get("Retry-After"))
				}
			}
		}
		clock.add(100 * time.Millisecond)
	}
	if refused == 0 {
		t.Error("60 guesses at one account from 30 addresses: none refused")
	}
	if rec := apiLogin(h, "alice", "long enough password", "192.0.2.44:1"); rec.Code != 200 {
		t.Errorf("the owner from a clean address during the attack: %d %s", rec.Code, rec.Body)
	}
}

// TestNATSSourceThrottled: one address trying many node names is
// throttled as a source; a node connecting from elsewhere is not.
func TestNATSSourceThrottled(t *testing.T) {
	h, _ := throttleHub(t)
	f := enrollFake(t, h, "south")
	connect := func(user, pw, ip string) error {
		nc, err := nats.Connect(h.NATSURL(), nats.UserInfo(user, pw), nats.MaxReconnects(0), nodeTLS(t, h, f.key),
			nats.SetCustomDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}))
		if err == nil {
			nc.Close()
		}
		return err
	}
	for i := range 20 {
		connect(fmt.Sprintf("guess-%d", i), "wrong", "127.0.0.3")
	}
	if connect("south", f.pass, "127.0.0.3") == nil {
		t.Error("a node from an address that tried 20 names was admitted during its wait")
	}
	if err := connect("south", f.pass, "127.0.0.4"); err != nil {
		t.Errorf("the node from another address: %v", err)
	}
}

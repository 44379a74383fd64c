package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
)

// syncBuffer is a stdout the test reads while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLoginDeviceFlow runs `mosaic login` in-process against a real hub;
// the code it prints is approved over HTTP by a logged-in user, the token
// lands in the credentials file and works; `mosaic logout` forgets and
// revokes it.
func TestLoginDeviceFlow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, err := hub.Open(ctx, hub.Config{Data: t.TempDir(), NATSListen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.AddUser(ctx, "rita", "rita-password-123", hub.RoleResearcher); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()

	cfgHome := filepath.Join(t.TempDir(), "config")
	getenv := func(k string) string {
		if k == "XDG_CONFIG_HOME" {
			return cfgHome
		}
		return ""
	}
	var stdout syncBuffer
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"login", "--hub", srv.URL + "/"}, getenv, strings.NewReader(""), &stdout, &stderr)
	}()

	var code string
	codeRE := regexp.MustCompile(`enter the code ([A-Z]{4}-[A-Z]{4})`)
	deadline := time.Now().Add(10 * time.Second)
	for code == "" && time.Now().Before(deadline) {
		if m := codeRE.FindStringSubmatch(stdout.String()); m != nil {
			code = m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code == "" || !strings.Contains(stdout.String(), srv.URL+"/device") || !strings.Contains(stdout.String(), srv.URL+"/device?user_code="+code) {
		t.Fatalf("login printed no code and URLs:\n%s\n%s", stdout.String(), stderr.String())
	}

	// The user approves in a browser session (here, over HTTP).
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values, cookie string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "mosaic_session", Value: cookie})
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	var sess string
	for _, c := range post("/login", url.Values{"user": {"rita"}, "password": {"rita-password-123"}, "next": {"/"}}, "").Cookies() {
		if c.Name == "mosaic_session" {
			sess = c.Value
		}
	}
	if sess == "" {
		t.Fatal("no session")
	}
	if r := post("/device", url.Values{"user_code": {code}, "decision": {"approve"}}, sess); r.StatusCode != http.StatusOK {
		t.Fatalf("approval: %d", r.StatusCode)
	}
	select {
	case st := <-done:
		if st != 0 {
			t.Fatalf("login exited %d:\n%s\n%s", st, stdout.String(), stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("login did not finish")
	}

	// The credentials file: 0600 in a 0700 folder, the token by hub URL.
	path := filepath.Join(cfgHome, "mosaic", "credentials.json")
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), want, err)
		}
	}
	tok, err := oidc.StoredToken(getenv, srv.URL)
	if err != nil || !strings.HasPrefix(tok, "mht_") {
		t.Fatalf("stored token %q, %v", tok, err)
	}
	if u, err := h.Authenticate(ctx, tok); err != nil || u.ID != "rita" {
		t.Fatalf("the stored token: %+v %v", u, err)
	}

	// logout forgets it here and revokes it at the hub.
	stdout = syncBuffer{}
	if st := run(ctx, []string{"logout", "--hub", srv.URL}, getenv, strings.NewReader(""), &stdout, &stderr); st != 0 {
		t.Fatalf("logout exited %d: %s", st, stderr.String())
	}
	if tok2, _ := oidc.StoredToken(getenv, srv.URL); tok2 != "" {
		t.Error("logout left the token in the file")
	}
	if _, err := h.Authenticate(ctx, tok); err == nil {
		t.Error("logout did not revoke the token at the hub")
	}
}

func TestLoginNeedsHub(t *testing.T) {
	for _, args := range [][]string{{"login"}, {"logout"}, {"login", "--hub", "ftp://hub.example"}} {
		var stdout, stderr bytes.Buffer
		if st := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); st != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, st, exitUsage, stderr.String())
		}
	}
}

// TestHubServeOIDCFlags checks that hub serve's OpenID flags reach the
// hub: a bad issuer and local login off without a provider are refused
// at start.
func TestHubServeOIDCFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--oidc-issuer", "ftp://login.example", "--oidc-client-id", "hub"}, nil, "is not an http(s) URL"},
		{[]string{"--oidc-client-id", "hub"}, map[string]string{"MOSAIC_HUB_OIDC_ISSUER": "ftp://login.example"}, "is not an http(s) URL"},
		{[]string{"--oidc-issuer", "https://login.example"}, nil, "client id is required"},
		{[]string{"--no-local-login"}, nil, "no_local_login needs an OpenID provider"},
	} {
		args := append([]string{"hub", "serve", "--create", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--nats-no-tls"}, c.args...)
		getenv := func(k string) string { return c.env[k] }
		var stdout, stderr bytes.Buffer
		// A hub that starts would serve until the context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		st := run(ctx, args, getenv, strings.NewReader(""), &stdout, &stderr)
		cancel()
		if st == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error with %q", c.args, st, stderr.String(), c.want)
		}
	}
}

package hub_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
)

// The hub with a real OpenID provider (oidcop_test.go) over HTTP.

type oidcClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *oidcClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *oidcClock) add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

type oidcFixture struct {
	h     *hub.Hub
	srv   *httptest.Server
	url   string
	op    *testOP
	clock *oidcClock
	data  string
}

var oidcTestMapping = oidc.Mapping{RoleClaim: "groups", Rules: []oidc.Rule{
	{Value: "mosaic-admins", Role: "admin"},
	{Value: "mosaic-researchers", Role: "researcher"},
	{Value: "mosaic:node:{node}:dataset:{dataset}"},
}}

// oidcSetup starts a provider with three users (alice a researcher, bob
// an admin, carol the representative of north/lung-ct) and a hub that
// logs in through it, with a local researcher account too.
func oidcSetup(t *testing.T, mutate func(*hub.Config)) *oidcFixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &oidcFixture{url: "http://" + ln.Addr().String(), clock: &oidcClock{}, data: t.TempDir()}
	f.op = newTestOP(t, f.url)
	f.op.addUser(&testOPUser{sub: "a1f3-alice", username: "alice", password: "alice-pass", email: "alice@uni.example", name: "Alice Example", groups: []string{"mosaic-researchers"}})
	f.op.addUser(&testOPUser{sub: "b2c4-bob", username: "bob", password: "bob-pass", email: "bob@uni.example", name: "Bob Example", groups: []string{"mosaic-admins"}})
	f.op.addUser(&testOPUser{sub: "c3d5-carol", username: "carol", password: "carol-pass", email: "carol@north.example", name: "Carol Example", groups: []string{"mosaic:node:north:dataset:lung-ct", "unrelated"}})
	cfg := hub.Config{Data: f.data, NATSListen: "127.0.0.1:0", PublicURL: f.url, Clock: f.clock.now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OIDC: oidc.Config{Issuer: f.op.issuer, ClientID: testOPClientID, ClientSecret: testOPClientSecret, Name: "Test Login",
			Mapping: oidcTestMapping, Now: f.clock.now, KeyRefetch: time.Second}}
	if mutate != nil {
		mutate(&cfg)
	}
	f.h, err = hub.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.h.Close() })
	if !cfg.NoLocalLogin {
		if err := f.h.AddUser(context.Background(), uiResearcher, uiResearcherPW, hub.RoleResearcher); err != nil {
			t.Fatal(err)
		}
	}
	f.srv = httptest.NewUnstartedServer(f.h.Handler())
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// browser is an HTTP client with cookies that follows redirects, as a
// browser does, and records where it went.
type oidcBrowser struct {
	c    *http.Client
	hops []string
}

func newOIDCBrowser(t *testing.T) *oidcBrowser {
	jar, _ := cookiejar.New(nil)
	b := &oidcBrowser{}
	b.c = &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		b.hops = append(b.hops, r.URL.String())
		return nil
	}}
	return b
}

func (b *oidcBrowser) do(t *testing.T, method, u string, form url.Values, hd map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hd {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	bs, _ := io.ReadAll(resp.Body)
	return resp, string(bs)
}

func (b *oidcBrowser) cookie(f *oidcFixture, name string) string {
	u, _ := url.Parse(f.url + "/oidc/callback")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var oidcProviderForm = regexp.MustCompile(`name="id" value="([^"]+)"`)

// login logs a browser in through the provider's page, starting at the
// hub's login link, and returns the final page.
func (b *oidcBrowser) login(t *testing.T, f *oidcFixture, user, pass, next string) (*http.Response, string) {
	t.Helper()
	resp, page := b.do(t, "GET", f.url+"/oidc/login?next="+url.QueryEscape(next), nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), f.op.issuer+"/login") {
		t.Fatalf("the hub's login link did not reach the provider's login page: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	m := oidcProviderForm.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form at the provider:\n%s", page)
	}
	return b.do(t, "POST", f.op.issuer+"/login", url.Values{"id": {m[1]}, "username": {user}, "password": {pass}}, nil)
}

func TestOIDCLoginMapsRoles(t *testing.T) {
	f := oidcSetup(t, nil)
	ctx := context.Background()

	// The login page offers the provider beside the local form.
	r := uiGet(t, f.url+"/login", "")
	uiWant(t, r, http.StatusOK, "Log in with Test Login", `action="/login"`)

	// Discovery, then the code flow: the browser ends on the hub's page
	// it asked for, logged in with the role the groups claim gives.
	b := newOIDCBrowser(t)
	resp, page := b.login(t, f, "alice", "alice-pass", "/catalogue")
	alice := oidc.UserID(f.op.issuer, "a1f3-alice")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != f.url+"/catalogue" {
		t.Fatalf("after login: %d at %s (hops %v)\n%s", resp.StatusCode, resp.Request.URL, b.hops, page)
	}
	if !strings.Contains(page, alice) || !strings.Contains(page, `<span class="role">researcher</span>`) {
		t.Fatalf("the page does not show %s logged in as a researcher:\n%s", alice, page)
	}
	// PKCE with S256 was asked for.
	if len(f.op.challenges) != 1 || f.op.challenges[0] != "S256" {
		t.Errorf("code challenge methods at the provider: %v, want [S256]", f.op.challenges)
	}
	// The session cookie is HttpOnly and SameSite=Lax (not Secure over
	// plain HTTP); the state cookie is gone.
	p, err := f.h.Person(ctx, alice)
	if err != nil || p.Email != "alice@uni.example" || p.Name != "Alice Example" || p.Role != hub.RoleResearcher {
		t.Fatalf("alice at the hub: %+v, %v", p, err)
	}
	if b.cookie(f, "mosaic_oidc") != "" {
		t.Error("the login state cookie outlived the login")
	}

	// An admin gets the admin pages.
	bb := newOIDCBrowser(t)
	bb.login(t, f, "bob", "bob-pass", "/nodes")
	resp, page = bb.do(t, "GET", f.url+"/nodes", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<span class="role">admin</span>`) {
		t.Fatalf("bob at /nodes: %d\n%s", resp.StatusCode, page)
	}
	// Carol represents north/lung-ct and nothing else.
	cb := newOIDCBrowser(t)
	cb.login(t, f, "carol", "carol-pass", "/")
	carol := oidc.UserID(f.op.issuer, "c3d5-carol")
	if ok, err := f.h.Represents(ctx, carol, "north", "lung-ct"); !ok || err != nil {
		t.Errorf("carol does not represent north/lung-ct: %v", err)
	}
	if ok, _ := f.h.Represents(ctx, carol, "south", "pelvis-mr"); ok {
		t.Error("carol represents south/pelvis-mr")
	}
	if p, _ := f.h.Person(ctx, carol); p.Role != hub.RoleRepresentative {
		t.Errorf("carol's role: %q", p.Role)
	}

	// A wrong password at the provider leaves the browser there.
	eb := newOIDCBrowser(t)
	resp, _ = eb.login(t, f, "alice", "wrong", "/")
	if resp.StatusCode != http.StatusUnauthorized || eb.cookie(f, "mosaic_session") != "" {
		t.Errorf("wrong password at the provider: %d, session %q", resp.StatusCode, eb.cookie(f, "mosaic_session"))
	}
}

func TestOIDCSessionCookieFlags(t *testing.T) {
	oidcCheckSessionCookie(t, false)
	// Published at an https URL (TLS ending at a proxy): Secure.
	oidcCheckSessionCookie(t, true)
}

func oidcCheckSessionCookie(t *testing.T, https bool) {
	var f *oidcFixture
	f = oidcSetup(t, func(c *hub.Config) {
		if https {
			c.OIDC.RedirectURL = c.PublicURL + "/oidc/callback"
			c.PublicURL = strings.Replace(c.PublicURL, "http://", "https://", 1)
		}
	})
	b := newOIDCBrowser(t)
	// Stop at the hub's callback to read its Set-Cookie.
	b.c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), f.url+"/oidc/callback") {
			return nil
		}
		if strings.HasPrefix(via[len(via)-1].URL.String(), f.url+"/oidc/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, _ := b.login(t, f, "alice", "alice-pass", "/")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "mosaic_session" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure != https {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Secure %v", sess, https)
	}
}

func TestOIDCCallbackRefusesForeignState(t *testing.T) {
	f := oidcSetup(t, nil)
	// The attacker logs in as themselves and stops before the hub's
	// callback, keeping the code and state of their own login.
	attacker := newOIDCBrowser(t)
	var stolen string
	attacker.c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), f.url+"/oidc/callback") {
			stolen = r.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	attacker.login(t, f, "bob", "bob-pass", "/")
	if stolen == "" {
		t.Fatal("no callback URL")
	}
	// The victim's browser started a login of its own (it has a state
	// cookie), then is made to open the attacker's callback URL.
	victim := newOIDCBrowser(t)
	victim.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := victim.do(t, "GET", f.url+"/oidc/login?next=/", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || victim.cookie(f, "mosaic_oidc") == "" {
		t.Fatalf("login start: %d, no state cookie", resp.StatusCode)
	}
	resp, page := victim.do(t, "GET", stolen, nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "does not belong to the log-in started in this browser") || victim.cookie(f, "mosaic_session") != "" {
		t.Fatalf("a callback with another login's state: %d, session %q\n%s", resp.StatusCode, victim.cookie(f, "mosaic_session"), page)
	}
	// Without any state cookie, and with a forged one.
	nb := newOIDCBrowser(t)
	resp, _ = nb.do(t, "GET", stolen, nil, nil)
	if resp.StatusCode != http.StatusBadRequest || nb.cookie(f, "mosaic_session") != "" {
		t.Fatalf("a callback without state cookie: %d", resp.StatusCode)
	}
	u, _ := url.Parse(stolen)
	forged := `{"State":"` + u.Query().Get("state") + `","Nonce":"n","Verifier":"v","next":"/","exp":9999999999}`
	resp, _ = nb.do(t, "GET", stolen, nil, map[string]string{"Cookie": "mosaic_oidc=" + b64(forged) + ".c2lnbmF0dXJl"})
	if resp.StatusCode != http.StatusBadRequest || nb.cookie(f, "mosaic_session") != "" {
		t.Fatalf("a callback with a forged state cookie: %d", resp.StatusCode)
	}
}

func TestOIDCRefreshRemapsRoles(t *testing.T) {
	f := oidcSetup(t, nil)
	b := newOIDCBrowser(t)
	b.login(t, f, "alice", "alice-pass", "/")
	resp, _ := b.do(t, "GET", f.url+"/nodes", nil, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a researcher at /nodes: %d", resp.StatusCode)
	}
	// The provider makes alice an admin. Within the access token's
	// lifetime the hub does not ask; after it, it refreshes and maps the
	// claims again.
	f.op.setGroups("alice", "mosaic-admins")
	f.clock.add(time.Minute)
	if resp, _ := b.do(t, "GET", f.url+"/nodes", nil, nil); resp.StatusCode != http.StatusForbidden || f.op.refreshes != 0 {
		t.Fatalf("before expiry: %d, %d refreshes", resp.StatusCode, f.op.refreshes)
	}
	f.clock.add(5 * time.Minute)
	resp, page := b.do(t, "GET", f.url+"/nodes", nil, nil)
	if resp.StatusCode != http.StatusOK || f.op.refreshes != 1 {
		t.Fatalf("after expiry: %d, %d refreshes\n%s", resp.StatusCode, f.op.refreshes, page)
	}
	// An entitlement removed at the provider removes the role: with no
	// group left there is no role, and the session ends.
	f.op.setGroups("alice")
	f.clock.add(6 * time.Minute)
	resp, page = b.do(t, "GET", f.url+"/", nil, nil)
	if strings.Contains(page, `class="who"`) {
		t.Fatalf("still logged in without any group:\n%s", page)
	}
	// A refresh the provider refuses ends the session too.
	f.op.setGroups("alice", "mosaic-researchers")
	b2 := newOIDCBrowser(t)
	b2.login(t, f, "alice", "alice-pass", "/")
	sess := b2.cookie(f, "mosaic_session")
	if u, err := f.h.Authenticate(context.Background(), sess); err != nil || u.Role != hub.RoleResearcher {
		t.Fatalf("second session: %+v, %v", u, err)
	}
	f.op.revokeRefresh("a1f3-alice")
	f.clock.add(6 * time.Minute)
	if r := uiGet(t, f.url+"/", sess); strings.Contains(r.body, `class="who"`) {
		t.Fatal("a session whose refresh the provider refused still works")
	}
	if _, err := f.h.Authenticate(context.Background(), sess); err == nil {
		t.Fatal("the refused session is still in the store")
	}
}

func TestOIDCLogoutEndsBothSessions(t *testing.T) {
	f := oidcSetup(t, nil)
	b := newOIDCBrowser(t)
	b.login(t, f, "alice", "alice-pass", "/")
	sess := b.cookie(f, "mosaic_session")
	if sess == "" {
		t.Fatal("not logged in")
	}
	resp, page := b.do(t, "POST", f.url+"/logout", url.Values{}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	m := regexp.MustCompile(`id="provider-logout" href="([^"]+)"`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("logout: %d\n%s", resp.StatusCode, page)
	}
	end := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.HasPrefix(end, f.op.issuer+"/end_session?") || !strings.Contains(end, "id_token_hint=") {
		t.Fatalf("logout leads to %s, want the provider's end_session with id_token_hint", end)
	}
	if !strings.Contains(page, `http-equiv="refresh"`) {
		t.Error("the logout page does not send the browser on")
	}
	if _, err := f.h.Authenticate(context.Background(), sess); err == nil {
		t.Fatal("the hub session outlived the logout")
	}
	resp, _ = b.do(t, "GET", end, nil, nil)
	if resp.Request.URL.String() != f.url+"/" {
		t.Errorf("after the provider's logout the browser is at %s, want the hub", resp.Request.URL)
	}
	if len(f.op.terminated) != 1 || f.op.terminated[0] != "a1f3-alice" {
		t.Errorf("sessions ended at the provider: %v", f.op.terminated)
	}
	// A local account's logout stays at the hub.
	local := uiLogin(t, f.srv, uiResearcher, uiResearcherPW)
	r := uiPost(t, f.url+"/logout", url.Values{}, local)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Errorf("local logout: %d to %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func oidcAPI(t *testing.T, f *oidcFixture, token string) (int, string) {
	t.Helper()
	r := uiDo(t, "GET", f.url+"/api/v1/nodes", nil, map[string]string{"Authorization": "Bearer " + token})
	return r.StatusCode, r.body
}

func TestOIDCBearerTokens(t *testing.T) {
	f := oidcSetup(t, nil)
	now := time.Now()
	claims := func(mut func(map[string]any)) map[string]any {
		c := map[string]any{"iss": f.op.issuer, "sub": "b2c4-bob", "aud": []string{testOPClientID}, "exp": now.Add(5 * time.Minute).Unix(),
			"iat": now.Unix(), "groups": []string{"mosaic-admins"}, "email": "bob@uni.example"}
		if mut != nil {
			mut(c)
		}
		return c
	}
	good := f.op.mint(t, claims(nil))
	if st, body := oidcAPI(t, f, good); st != http.StatusOK {
		t.Fatalf("a provider token of an admin: %d %s", st, body)
	}
	for _, c := range []struct {
		name, token, want string
	}{
		{"wrong audience", f.op.mint(t, claims(func(c map[string]any) { c["aud"] = []string{"another-service"} })), "audience"},
		{"expired", f.op.mint(t, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "expired"},
		{"other issuer", f.op.mint(t, claims(func(c map[string]any) { c["iss"] = "https://elsewhere.example" })), "issuer"},
		{"tampered", good[:len(good)-4] + "AAAA", "signature"},
	} {
		st, body := oidcAPI(t, f, c.token)
		if st != http.StatusUnauthorized || !strings.Contains(body, "bearer token refused") || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 401 naming %q", c.name, st, body, c.want)
		}
	}
	// A researcher's token is a researcher's.
	res := f.op.mint(t, claims(func(c map[string]any) { c["sub"] = "a1f3-alice"; c["groups"] = []string{"mosaic-researchers"} }))
	if st, _ := oidcAPI(t, f, res); st != http.StatusForbidden {
		t.Errorf("a researcher's provider token at an admin route: %d", st)
	}
	// Hub API tokens keep working.
	if err := f.h.AddUser(context.Background(), "ops", "ops-password-123", hub.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	tok, err := f.h.NewUserToken(context.Background(), "ops", "test")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := oidcAPI(t, f, tok); st != http.StatusOK {
		t.Errorf("a hub API token: %d", st)
	}

	// Key rotation: the provider publishes a new key and drops the old.
	// A token of the new key (an unknown kid) makes the hub fetch the
	// keys again; then tokens of the removed key are refused.
	f.op.rotate()
	fresh := f.op.mint(t, claims(nil))
	// Within KeyRefetch of the last fetch the hub does not fetch again:
	// forged tokens cannot make it hammer the provider.
	oidcAPI(t, f, good[:len(good)-4]+"AAAA") // a forged signature: a fetch, or none within the interval
	f.op.mu.Lock()
	fetches := f.op.keyFetches
	f.op.mu.Unlock()
	for i := 0; i < 10; i++ {
		if st, _ := oidcAPI(t, f, fresh); st != http.StatusUnauthorized {
			t.Fatalf("a token of a key not fetched yet, within the refetch interval: %d", st)
		}
	}
	f.op.mu.Lock()
	if f.op.keyFetches > fetches+1 {
		t.Errorf("%d key fetches for 10 tokens of an unknown key", f.op.keyFetches-fetches)
	}
	f.op.mu.Unlock()
	time.Sleep(1100 * time.Millisecond)
	if st, body := oidcAPI(t, f, fresh); st != http.StatusOK {
		t.Fatalf("a token of the provider's new key: %d %s", st, body)
	}
	if st, body := oidcAPI(t, f, good); st != http.StatusUnauthorized || !strings.Contains(body, "signature") {
		t.Fatalf("a token of the removed key: %d %s", st, body)
	}
}

func TestOIDCNoLocalLogin(t *testing.T) {
	f := oidcSetup(t, func(c *hub.Config) { c.NoLocalLogin = true })
	r := uiGet(t, f.url+"/login", "")
	uiWant(t, r, http.StatusOK, "Log in with Test Login")
	uiWantNot(t, r, `action="/login"`)
	if err := f.h.AddUser(context.Background(), uiResearcher, uiResearcherPW, hub.RoleResearcher); err != nil {
		t.Fatal(err)
	}
	r = uiPost(t, f.url+"/login", url.Values{"user": {uiResearcher}, "password": {uiResearcherPW}}, "")
	if r.StatusCode != http.StatusForbidden || uiSessionOf(r) != nil {
		t.Fatalf("a password with local login off: %d", r.StatusCode)
	}
	ar, err := http.Post(f.url+"/api/v1/login", "application/json", strings.NewReader(`{"user":"`+uiResearcher+`","password":"`+uiResearcherPW+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	ar.Body.Close()
	if ar.StatusCode != http.StatusForbidden {
		t.Fatalf("an API password login with local login off: %d", ar.StatusCode)
	}
}

func TestOIDCLocalNameTaken(t *testing.T) {
	// With user ids from a claim, a provider's user whose name is a local
	// account's is refused rather than logged in as that account.
	f := oidcSetup(t, func(c *hub.Config) { c.OIDC.Mapping.UserClaim = "preferred_username" })
	if err := f.h.AddUser(context.Background(), "alice", "local-alice-password", hub.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	b := newOIDCBrowser(t)
	resp, page := b.login(t, f, "alice", "alice-pass", "/")
	if resp.StatusCode != http.StatusForbidden || b.cookie(f, "mosaic_session") != "" || !strings.Contains(page, "local account") {
		t.Fatalf("provider user named like a local account: %d\n%s", resp.StatusCode, page)
	}
	// bob has no local namesake and logs in under his name.
	b2 := newOIDCBrowser(t)
	b2.login(t, f, "bob", "bob-pass", "/")
	if u, err := f.h.Authenticate(context.Background(), b2.cookie(f, "mosaic_session")); err != nil || u.ID != "bob" {
		t.Fatalf("bob: %+v %v", u, err)
	}
}

func oidcAuditActions(t *testing.T, data string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Action string `json:"action"`
		}
		json.Unmarshal([]byte(line), &e)
		out = append(out, e.Action)
	}
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestOIDCCallbackChecksNonce(t *testing.T) {
	f := oidcSetup(t, nil)
	// A login stopped before the callback: its state cookie holds the
	// state, nonce and verifier.
	b := newOIDCBrowser(t)
	var callback string
	b.c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), f.url+"/oidc/callback") {
			callback = r.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	b.login(t, f, "alice", "alice-pass", "/")
	raw, _, _ := strings.Cut(b.cookie(f, "mosaic_oidc"), ".")
	js, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || callback == "" {
		t.Fatalf("state cookie %q, callback %q: %v", raw, callback, err)
	}
	var st struct{ State, Nonce, Verifier string }
	if err := json.Unmarshal(js, &st); err != nil {
		t.Fatal(err)
	}
	// The same state and verifier but another nonce: the ID token the
	// provider issues carries the login's nonce, not this one.
	cookie := f.h.SealOIDCState(st.State, "another-nonce", st.Verifier, "/")
	resp, page := newOIDCBrowser(t).do(t, "GET", callback, nil, map[string]string{"Cookie": "mosaic_oidc=" + cookie})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "could not be verified") {
		t.Fatalf("a callback whose ID token has another nonce: %d\n%s", resp.StatusCode, page)
	}
}

func TestOIDCRefreshForAnotherUserEndsSession(t *testing.T) {
	// A refresh whose ID token names another subject ends the session.
	f := oidcSetup(t, nil)
	b := newOIDCBrowser(t)
	b.login(t, f, "alice", "alice-pass", "/")
	sess := b.cookie(f, "mosaic_session")
	f.op.mu.Lock()
	f.op.swapSubject = "b2c4-bob"
	f.op.mu.Unlock()
	f.clock.add(6 * time.Minute)
	if u, err := f.h.Authenticate(context.Background(), sess); err != nil {
		t.Fatalf("before use: %v", err)
	} else if r := uiGet(t, f.url+"/nodes", sess); r.StatusCode == http.StatusOK || strings.Contains(r.body, `class="who"`) {
		t.Fatalf("a session refreshed as another subject still works (%s): %d", u.ID, r.StatusCode)
	}

	// With user ids from a claim, a refresh under another name ends the
	// session rather than move it to another account.
	g := oidcSetup(t, func(c *hub.Config) { c.OIDC.Mapping.UserClaim = "preferred_username" })
	b = newOIDCBrowser(t)
	b.login(t, g, "bob", "bob-pass", "/")
	sess = b.cookie(g, "mosaic_session")
	g.op.rename("bob", "robert")
	g.clock.add(6 * time.Minute)
	if r := uiGet(t, g.url+"/", sess); strings.Contains(r.body, `class="who"`) {
		t.Fatalf("a session refreshed under another user name still works:\n%s", r.body)
	}
}

func TestOIDCRefreshChecksSubject(t *testing.T) {
	// With user ids from a claim, a refreshed token of another subject
	// that carries the same user name (a name reassigned at the provider)
	// ends the session.
	f := oidcSetup(t, func(c *hub.Config) { c.OIDC.Mapping.UserClaim = "preferred_username" })
	b := newOIDCBrowser(t)
	b.login(t, f, "alice", "alice-pass", "/")
	sess := b.cookie(f, "mosaic_session")
	f.op.rename("bob", "alice")
	f.op.mu.Lock()
	f.op.swapSubject = "b2c4-bob"
	f.op.mu.Unlock()
	f.clock.add(6 * time.Minute)
	if r := uiGet(t, f.url+"/", sess); strings.Contains(r.body, `class="who"`) {
		t.Fatalf("a session refreshed as another subject of the same name still works:\n%s", r.body)
	}
}

func TestOIDCProviderDown(t *testing.T) {
	// A hub whose provider cannot be reached starts, says so on the
	// provider's login link and to bearer tokens, and local log-ins work.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	_, srv := uiTestHub(t, hub.Config{PublicURL: "http://hub.example", OIDC: oidc.Config{Issuer: down, ClientID: "hub", Name: "Down Login",
		Mapping: oidc.Mapping{DefaultRole: "researcher"}}})
	uiWant(t, uiGet(t, srv.URL+"/login", ""), http.StatusOK, "Log in with Down Login")
	uiWant(t, uiGet(t, srv.URL+"/oidc/login?next=/", ""), http.StatusBadGateway, "cannot reach Down Login")
	r := uiDo(t, "GET", srv.URL+"/api/v1/nodes", nil, map[string]string{"Authorization": "Bearer aaaa.bbbb.cccc"})
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "cannot reach its OpenID provider") {
		t.Errorf("a JWT while the provider is down: %d %s", r.StatusCode, r.body)
	}
	uiLogin(t, srv, uiResearcher, uiResearcherPW)
}

func TestOIDCProviderAccessToken(t *testing.T) {
	// A script's real access token from the provider (code flow with
	// PKCE as the hub's client), presented as a bearer token.
	f := oidcSetup(t, nil)
	conf := &oauth2.Config{ClientID: testOPClientID, ClientSecret: testOPClientSecret, RedirectURL: f.url + "/oidc/callback",
		Endpoint: oauth2.Endpoint{AuthURL: f.op.issuer + "/authorize", TokenURL: f.op.issuer + "/oauth/token"}, Scopes: []string{"openid"}}
	verifier := oauth2.GenerateVerifier()
	b := newOIDCBrowser(t)
	var callback string
	b.c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), f.url+"/oidc/callback") {
			callback = r.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	_, page := b.do(t, "GET", conf.AuthCodeURL("script-state", oauth2.S256ChallengeOption(verifier)), nil, nil)
	m := oidcProviderForm.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form:\n%s", page)
	}
	b.do(t, "POST", f.op.issuer+"/login", url.Values{"id": {m[1]}, "username": {"bob"}, "password": {"bob-pass"}}, nil)
	u, err := url.Parse(callback)
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("no code: %q", callback)
	}
	tok, err := conf.Exchange(context.Background(), u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if !oidc.LooksLikeJWT(tok.AccessToken) {
		t.Fatalf("the provider's access token is not a JWT: %q", tok.AccessToken)
	}
	if st, body := oidcAPI(t, f, tok.AccessToken); st != http.StatusOK {
		t.Fatalf("the provider's access token of an admin: %d %s", st, body)
	}
	if idt, _ := tok.Extra("id_token").(string); idt == "" {
		t.Error("no ID token")
	} else if st, body := oidcAPI(t, f, idt); st != http.StatusOK {
		t.Errorf("the provider's ID token of an admin: %d %s", st, body)
	}
}

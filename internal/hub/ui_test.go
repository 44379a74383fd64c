package hub_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

const (
	uiResearcher   = "rosa"
	uiResearcherPW = "a long researcher password"
	uiAdmin        = "ada"
	uiAdminPW      = "a long administrator password"
	uiEvilTitle    = `Lung <script>alert("x")</script> CT`
)

// uiTestHub opens a hub with two users and a catalogue of two nodes,
// written straight into its store (no node is running), and serves it.
func uiTestHub(t *testing.T, cfg hub.Config) (*hub.Hub, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	cfg.Data = t.TempDir()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := hub.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, u := range []struct{ id, pw, role string }{{uiResearcher, uiResearcherPW, hub.RoleResearcher}, {uiAdmin, uiAdminPW, hub.RoleAdmin}} {
		if err := h.AddUser(ctx, u.id, u.pw, u.role); err != nil {
			t.Fatal(err)
		}
	}
	modified := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	catalogues := []struct {
		node, title string
		datasets    []fed.DatasetSummary
	}{
		{"north", "North University Hospital", []fed.DatasetSummary{{
			ID: "lung-ct", Title: uiEvilTitle, Description: "Thoracic CT of lung cancer patients.",
			Licence: "CC-BY-4.0", Contact: "imaging@north.example", AccessRights: "RESTRICTED", Tier: 3,
			Subjects: 1200, Studies: 3400, Modalities: []string{"CT", "PT"}, BodyParts: []string{"CHEST"},
			Conditions: []string{"lung"}, Manufacturers: []string{"Aurora Imaging"}, Sexes: []string{"female", "male"},
			AgeRange: &fed.AgeRange{Min: 41, Max: 88}, Modified: modified,
		}}},
		{"south", "South Cancer Centre", []fed.DatasetSummary{{
			ID: "pelvis-mr", Title: "Prostate MR", Description: "Pelvic MR of prostate cancer.",
			Contact: "https://south.example/data", AccessRights: "PUBLIC", Tier: 2,
			Subjects: 34, Studies: 90, Modalities: []string{"MR", "CT"}, BodyParts: []string{"PELVIS", "PROSTATE"},
			Conditions: []string{"prostate"}, Manufacturers: []string{"Helix Medical Systems"}, Sexes: []string{"male"},
			Modified: modified.Add(time.Hour),
		}}},
	}
	for _, c := range catalogues {
		if _, err := h.AddNode(ctx, c.node, c.title, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.PutCatalogue(ctx, fed.Catalogue{Node: c.node, Datasets: c.datasets}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return h, srv
}

// uiClient follows no redirects, so tests see them.
var uiClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       20 * time.Second,
}

type uiResponse struct {
	*http.Response
	body string
}

func uiDo(t *testing.T, method, u string, form url.Values, header map[string]string) uiResponse {
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
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := uiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return uiResponse{resp, string(b)}
}

func uiGet(t *testing.T, u string, cookie string) uiResponse {
	t.Helper()
	hd := map[string]string{}
	if cookie != "" {
		hd["Cookie"] = "mosaic_session=" + cookie
	}
	return uiDo(t, "GET", u, nil, hd)
}

// uiPost sends a form the way a browser does from the hub's own page.
func uiPost(t *testing.T, u string, form url.Values, cookie string) uiResponse {
	t.Helper()
	hd := map[string]string{"Sec-Fetch-Site": "same-origin"}
	if cookie != "" {
		hd["Cookie"] = "mosaic_session=" + cookie
	}
	return uiDo(t, "POST", u, form, hd)
}

func uiSessionOf(r uiResponse) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == "mosaic_session" {
			return c
		}
	}
	return nil
}

// uiLogin logs in through the form and returns the session cookie's
// value.
func uiLogin(t *testing.T, srv *httptest.Server, user, pw string) string {
	t.Helper()
	r := uiPost(t, srv.URL+"/login", url.Values{"user": {user}, "password": {pw}, "next": {"/"}}, "")
	c := uiSessionOf(r)
	if r.StatusCode != http.StatusSeeOther || c == nil || c.Value == "" {
		t.Fatalf("login: %d, cookie %v:\n%s", r.StatusCode, c, r.body)
	}
	return c.Value
}

func uiWant(t *testing.T, r uiResponse, status int, contains ...string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d:\n%s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	}
	for _, s := range contains {
		if !strings.Contains(r.body, s) {
			t.Errorf("%s %s: page lacks %q", r.Request.Method, r.Request.URL, s)
		}
	}
}

func uiWantNot(t *testing.T, r uiResponse, absent ...string) {
	t.Helper()
	for _, s := range absent {
		if strings.Contains(r.body, s) {
			t.Errorf("%s %s: page has %q", r.Request.Method, r.Request.URL, s)
		}
	}
}

func TestUIDashboard(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	r := uiGet(t, srv.URL+"/", "")
	uiWant(t, r, 200, "Federation dashboard", "<svg", `id="chart-modality"`, `id="chart-body-part"`,
		"1,234", "3,490", // subjects and studies summed over both datasets
		`href="/datasets/south/pelvis-mr"`, "Prostate MR", "Recent catalogue updates",
		`href="/catalogue"`, `href="/search"`, "Log in")
	if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	// CT is in both datasets: its bar counts both datasets' studies.
	uiWant(t, r, 200, "CT: 3,490 studies in 2 datasets", "Chest: 3,400 studies in 1 dataset")
	// Anonymous visitors see no admin link, and no link to access
	// requests; a logged-in researcher gets the latter.
	uiWantNot(t, r, `href="/nodes"`, `href="/access"`)
	researcher := uiLogin(t, srv, uiResearcher, uiResearcherPW)
	uiWant(t, uiGet(t, srv.URL+"/", researcher), 200, `<a href="/access">Access</a>`)
	uiWant(t, uiGet(t, srv.URL+"/access", researcher), 200, `<a href="/access" aria-current="page">Access</a>`)
	// The stylesheet is served from the binary.
	css := uiGet(t, srv.URL+"/ui/style.css", "")
	uiWant(t, css, 200, "--accent")
	if ct := css.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("stylesheet Content-Type %q", ct)
	}
}

func TestUINotFoundAndAPIStillServed(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	uiWant(t, uiGet(t, srv.URL+"/no/such/page", ""), 404, "Page not found")
	uiWant(t, uiGet(t, srv.URL+"/catalogue/extra", ""), 404, "Page not found")
	api := uiGet(t, srv.URL+"/api/v1/nothing", "")
	uiWant(t, api, 404, `"error"`)
	if ct := api.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("unknown API path: Content-Type %q", ct)
	}
	ds := uiGet(t, srv.URL+"/api/v1/datasets", "")
	uiWant(t, ds, 200, `"pelvis-mr"`)
	var out struct{ Total int }
	if err := json.Unmarshal([]byte(ds.body), &out); err != nil || out.Total != 2 {
		t.Errorf("API datasets: %v, total %d", err, out.Total)
	}
	uiWant(t, uiGet(t, srv.URL+"/healthz", ""), 200, "ok")
	uiWant(t, uiGet(t, srv.URL+"/api/v1/datasets/north/lung-ct", ""), 200, `"lung-ct"`)
	uiWant(t, uiGet(t, srv.URL+"/api/v1/nodes", ""), 401)
}

func TestUICatalogue(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	r := uiGet(t, srv.URL+"/catalogue", "")
	uiWant(t, r, 200, "2 of 2 datasets", `href="/datasets/north/lung-ct"`, `href="/datasets/south/pelvis-mr"`,
		`name="modality" value="CT"`, `name="body_part" value="PELVIS"`, `name="condition" value="prostate"`,
		`name="manufacturer" value="Helix Medical Systems"`, `name="sex" value="female"`, `name="node" value="south"`, `name="tier" value="3"`,
		"South Cancer Centre", "RESTRICTED", "PUBLIC", "Tier 2: searchable", "1,200", "3,400")
	// CT is held by both datasets.
	if !strings.Contains(r.body, `<label for="f-modality-0">CT</label> <span class="count" aria-label="2 datasets">2</span>`) {
		t.Errorf("the CT facet does not count 2 datasets")
	}

	r = uiGet(t, srv.URL+"/catalogue?modality=MR", "")
	uiWant(t, r, 200, "1 of 2 datasets", "Prostate MR", `value="MR" checked`, "Modality: MR")
	uiWantNot(t, r, `href="/datasets/north/lung-ct"`)

	r = uiGet(t, srv.URL+"/catalogue?q=thoracic", "")
	uiWant(t, r, 200, "1 of 2 datasets", `href="/datasets/north/lung-ct"`, `value="thoracic"`, "Text: thoracic")

	r = uiGet(t, srv.URL+"/catalogue?node=south&tier=2", "")
	uiWant(t, r, 200, "1 of 2 datasets", `value="south" checked`, `value="2" checked`)

	// Nothing matches: the chosen values stay listed so they can be unchosen.
	r = uiGet(t, srv.URL+"/catalogue?modality=MR&condition=lung", "")
	uiWant(t, r, 200, "0 of 2 datasets", "No dataset matches", `value="lung" checked`, `href="/catalogue?modality=MR"`)
}

func TestUIDataset(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	r := uiGet(t, srv.URL+"/datasets/north/lung-ct", "")
	uiWant(t, r, 200, "North University Hospital", "Thoracic CT of lung cancer patients.", "1,200", "3,400",
		"41–88 years", "female, male", "Aurora Imaging", "CC-BY-4.0", `href="mailto:imaging@north.example"`,
		"Tier 3: searchable, full data model", "RESTRICTED", "PET",
		`href="/api/v1/datasets/north/lung-ct/dcat?format=jsonld"`, `href="/api/v1/datasets/north/lung-ct/dcat?format=turtle"`)
	r = uiGet(t, srv.URL+"/datasets/south/pelvis-mr", "")
	uiWant(t, r, 200, "Prostate MR", `href="https://south.example/data"`, "Pelvis, Prostate", "not published")
	uiWant(t, uiGet(t, srv.URL+"/datasets/north/nothing", ""), 404, "Dataset not found")
	uiWant(t, uiGet(t, srv.URL+"/datasets/nowhere/lung-ct", ""), 404, "Dataset not found")
}

// A dataset title comes from a node: it must reach the page as text,
// never as markup.
func TestUIEscapesDatasetTitles(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	cookie := uiLogin(t, srv, uiResearcher, uiResearcherPW)
	for _, path := range []string{"/", "/catalogue", "/catalogue?q=lung", "/datasets/north/lung-ct"} {
		r := uiGet(t, srv.URL+path, cookie)
		uiWant(t, r, 200, "Lung &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; CT")
		if strings.Contains(strings.ToLower(r.body), "<script") {
			t.Errorf("%s: the page has a script element", path)
		}
	}
}

func TestUILoginLogout(t *testing.T) {
	h, srv := uiTestHub(t, hub.Config{})
	r := uiGet(t, srv.URL+"/login?next=/search", "")
	uiWant(t, r, 200, `name="next" value="/search"`, `name="password"`, `autocomplete="current-password"`)

	r = uiPost(t, srv.URL+"/login", url.Values{"user": {uiResearcher}, "password": {"not the password"}, "next": {"/search"}}, "")
	uiWant(t, r, 401, "Wrong user name or password", `value="rosa"`)
	uiWantNot(t, r, "not the password")
	if uiSessionOf(r) != nil {
		t.Error("a failed login set a session cookie")
	}

	r = uiPost(t, srv.URL+"/login", url.Values{"user": {uiResearcher}, "password": {uiResearcherPW}, "next": {"/search"}}, "")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/search" {
		t.Fatalf("login: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	c := uiSessionOf(r)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.MaxAge != 12*3600 {
		t.Fatalf("session cookie %+v", c)
	}
	if !strings.HasPrefix(c.Value, "mhs_") {
		t.Errorf("session cookie holds %q, not a session secret", c.Value)
	}
	if u, err := h.Authenticate(context.Background(), c.Value); err != nil || u.ID != uiResearcher {
		t.Fatalf("the cookie's session: %v %v", u, err)
	}
	r = uiGet(t, srv.URL+"/search", c.Value)
	uiWant(t, r, 200, "Search the federation", "rosa", "Log out")
	uiWantNot(t, r, `href="/nodes"`)

	r = uiPost(t, srv.URL+"/logout", url.Values{}, c.Value)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("logout: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if gone := uiSessionOf(r); gone == nil || gone.MaxAge >= 0 || gone.Value != "" {
		t.Errorf("logout did not clear the cookie: %+v", gone)
	}
	if _, err := h.Authenticate(context.Background(), c.Value); err == nil {
		t.Error("the session survived logout")
	}
	r = uiGet(t, srv.URL+"/search", c.Value)
	if r.StatusCode != http.StatusSeeOther {
		t.Errorf("search after logout: %d", r.StatusCode)
	}
}

// Over TLS the session cookie is marked Secure.
func TestUILoginCookieSecureOverTLS(t *testing.T) {
	h, _ := uiTestHub(t, hub.Config{})
	form := url.Values{"user": {uiResearcher}, "password": {uiResearcherPW}}
	req := httptest.NewRequest("POST", "https://hub.example/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, req)
	var c *http.Cookie
	for _, k := range rec.Result().Cookies() {
		if k.Name == "mosaic_session" {
			c = k
		}
	}
	if rec.Code != http.StatusSeeOther || c == nil || !c.Secure || !c.HttpOnly {
		t.Fatalf("TLS login: %d, cookie %+v", rec.Code, c)
	}
}

func TestUILoginRefusesOpenRedirects(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	for next, want := range map[string]string{
		"https://evil.example/":   "/",
		"//evil.example/path":     "/",
		"/\\evil.example":         "/",
		"\\\\evil.example":        "/",
		"/\t/evil.example":        "/",
		"javascript:alert(1)":     "/",
		"evil.example":            "/",
		"http:/evil.example":      "/",
		"":                        "/",
		"/login":                  "/",
		"/catalogue?modality=CT":  "/catalogue?modality=CT",
		"/datasets/north/lung-ct": "/datasets/north/lung-ct",
	} {
		r := uiPost(t, srv.URL+"/login", url.Values{"user": {uiResearcher}, "password": {uiResearcherPW}, "next": {next}}, "")
		if got := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("next %q: %d to %q, want %q", next, r.StatusCode, got, want)
		}
	}
	// The login form does not carry a foreign target either.
	uiWant(t, uiGet(t, srv.URL+"/login?next=https://evil.example/", ""), 200, `name="next" value="/"`)
}

func TestUIRefusesCrossOriginForms(t *testing.T) {
	h, srv := uiTestHub(t, hub.Config{})
	cookie := uiLogin(t, srv, uiResearcher, uiResearcherPW)
	login := url.Values{"user": {uiResearcher}, "password": {uiResearcherPW}}
	for _, hd := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "http://evil.example"},
	} {
		r := uiDo(t, "POST", srv.URL+"/login", login, hd)
		uiWant(t, r, 403, "Request refused")
		if uiSessionOf(r) != nil {
			t.Errorf("%v: a cross-origin login set a cookie", hd)
		}
		hd["Cookie"] = "mosaic_session=" + cookie
		uiWant(t, uiDo(t, "POST", srv.URL+"/search", url.Values{"gender": {"female"}}, hd), 403, "Request refused")
		uiWant(t, uiDo(t, "POST", srv.URL+"/logout", url.Values{}, hd), 403, "Request refused")
	}
	if _, err := h.Authenticate(context.Background(), cookie); err != nil {
		t.Error("a cross-origin logout ended the session")
	}
	// The same form from the hub's own page goes through.
	uiWant(t, uiDo(t, "POST", srv.URL+"/search", url.Values{}, map[string]string{"Origin": srv.URL, "Cookie": "mosaic_session=" + cookie}), 200, "Results")
}

func TestUINodesAdminsOnly(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	r := uiGet(t, srv.URL+"/nodes", "")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?next=/nodes" {
		t.Errorf("anonymous: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	researcher := uiLogin(t, srv, uiResearcher, uiResearcherPW)
	uiWant(t, uiGet(t, srv.URL+"/nodes", researcher), 403, "Administrators only")
	admin := uiLogin(t, srv, uiAdmin, uiAdminPW)
	r = uiGet(t, srv.URL+"/nodes", admin)
	uiWant(t, r, 200, `data-node="north"`, `data-node="south"`, "North University Hospital", "status-pending", "not yet")
	// Admins get the nav link.
	uiWant(t, uiGet(t, srv.URL+"/", admin), 200, `href="/nodes"`)
}

func TestUISearchNeedsLogin(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	r := uiGet(t, srv.URL+"/search", "")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?next=/search" {
		t.Errorf("GET /search: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	r = uiPost(t, srv.URL+"/search", url.Values{"gender": {"female"}}, "")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?next=/search" {
		t.Errorf("POST /search: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	r = uiGet(t, srv.URL+"/search", "mhs_not-a-session-at-all")
	if r.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /search with a made-up session: %d", r.StatusCode)
	}
}

// uiAST reads the query the page shows for the API back, with the lens
// parser the API uses: its canonical form.
func uiAST(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `<pre id="ast"><code>`)
	if !ok {
		t.Fatal("the page shows no AST")
	}
	text, _, _ := strings.Cut(rest, "</code></pre>")
	q, err := lens.Parse([]byte(html.UnescapeString(text)))
	if err != nil {
		t.Fatalf("AST %q: %v", text, err)
	}
	return string(q.Canonical())
}

// uiCanonical is the canonical form of a Lens query.
func uiCanonical(t *testing.T, s string) string {
	t.Helper()
	q, err := lens.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return string(q.Canonical())
}

func TestUISearchBuildsLensQueries(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{})
	cookie := uiLogin(t, srv, uiResearcher, uiResearcherPW)
	for _, c := range []struct {
		name string
		form url.Values
		ast  string
	}{
		{"empty form", url.Values{}, `{"operand":"AND","children":[]}`},
		{"one criterion", url.Values{"gender": {"female"}},
			`{"operand":"AND","children":[{"key":"SNOMEDCT263495000","type":"EQUALS","system":"","value":"SNOMEDCT248152002"}]}`},
		{"every criterion", url.Values{
			"gender": {"male"}, "age_min": {"40"}, "age_max": {"70"}, "diagnosis": {"prostate"}, "year_min": {"2015"},
			"modality": {"MR", "CT"}, "body_part": {"pelvis"}, "manufacturer": {"helix"}, "not": {"manufacturer"},
		}, `{"operand":"AND","children":[
			{"key":"SNOMEDCT263495000","type":"EQUALS","system":"","value":"SNOMEDCT248153007"},
			{"key":"SNOMEDCT423493009","type":"BETWEEN","system":"","value":{"min":40,"max":70}},
			{"key":"SNOMEDCT439401001","type":"EQUALS","system":"","value":"SNOMEDCT399068003"},
			{"key":"SNOMEDCT432213005","type":"BETWEEN","system":"","value":{"min":2015}},
			{"operand":"OR","children":[
				{"key":"RID10311","type":"EQUALS","system":"","value":"RID10321"},
				{"key":"RID10311","type":"EQUALS","system":"","value":"RID10312"}]},
			{"key":"SNOMEDCT123037004","type":"EQUALS","system":"","value":"SNOMEDCT12921003"},
			{"operand":"NOT","children":[{"key":"C25392","type":"CONTAINS","system":"","value":"helix"}]}]}`},
		{"upper bound only, negated", url.Values{"age_max": {"50"}, "not": {"age"}},
			`{"operand":"AND","children":[{"operand":"NOT","children":[{"key":"SNOMEDCT423493009","type":"BETWEEN","system":"","value":{"max":50}}]}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := uiPost(t, srv.URL+"/search", c.form, cookie)
			uiWant(t, r, 200, "Results", `id="results-table"`, `id="node-status"`, "No searchable dataset answered", "No node is enrolled")
			if got, want := uiAST(t, r.body), uiCanonical(t, c.ast); got != want {
				t.Errorf("AST\n got %v\nwant %v", got, want)
			}
			// The form shows what was asked.
			for _, m := range c.form["modality"] {
				uiWant(t, r, 200, `value="`+m+`" checked`)
			}
		})
	}
}

func TestUISearchErrors(t *testing.T) {
	_, srv := uiTestHub(t, hub.Config{QueriesPerDay: 2})
	cookie := uiLogin(t, srv, uiResearcher, uiResearcherPW)
	for _, form := range []url.Values{
		{"age_min": {"forty"}},
		{"age_min": {"70"}, "age_max": {"40"}},
		{"year_max": {"99999"}},
		{"gender": {"robot"}},
		{"modality": {"XRAY"}},
		{"manufacturer": {strings.Repeat("x", 65)}},
	} {
		r := uiPost(t, srv.URL+"/search", form, cookie)
		uiWant(t, r, 400, `role="alert"`, "Not searched")
		uiWantNot(t, r, `id="results-table"`)
	}
	// Errors cost no query; the quota counts searches that ran.
	uiWant(t, uiPost(t, srv.URL+"/search", url.Values{}, cookie), 200, "Results")
	uiWant(t, uiPost(t, srv.URL+"/search", url.Values{}, cookie), 200, "Results")
	r := uiPost(t, srv.URL+"/search", url.Values{"gender": {"female"}}, cookie)
	uiWant(t, r, 429, "daily number of searches", `value="female" selected`)
}

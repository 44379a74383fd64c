package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

func airlockModel(df int) []byte {
	b, _ := json.Marshal(map[string]any{"mosaic_output": "model", "version": 1, "n": df + 2, "df_residual": df,
		"coefficients": []map[string]any{{"term": "(Intercept)", "estimate": 1.5}, {"term": "age", "estimate": 0.02}}})
	return b
}

// auditActions reads the node's audit log, checks its chain and returns
// "actor action subject" per record.
func auditActions(t *testing.T, data string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := audit.Verify(f); err != nil {
		t.Fatalf("audit log: %v", err)
	}
	f.Seek(0, 0)
	var out []string
	dec := json.NewDecoder(f)
	for dec.More() {
		var r struct{ Actor, Action, Subject string }
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Actor+" "+r.Action+" "+r.Subject)
	}
	return out
}

func TestAirlockAPI(t *testing.T) {
	n, srv, admin := testNode(t, "sqlite")
	n.cfg.Airlock = airlock.Policy{ManualRelease: true, TwoPerson: true}
	ctx := context.Background()
	second, _, err := n.ix.CreateToken(ctx, "bob", index.ScopeAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	read, _, _ := n.ix.CreateToken(ctx, "reader", index.ScopeRead, "")
	lungAdmin, _, _ := n.ix.CreateToken(ctx, "lung-admin", index.ScopeAdmin, "lung")
	s, err := n.Airlock()
	if err != nil {
		t.Fatal(err)
	}
	var sent []string
	s.OnRelease(func(h airlock.Held, data []byte) { sent = append(sent, h.ID) })
	m, err := s.Hold(airlock.Output{Job: "job-1", Name: "model.json", Data: airlockModel(40)}, airlock.Permissions{})
	if err != nil || m.State != airlock.StateHeld {
		t.Fatalf("hold: %+v %v", m, err)
	}
	txt, _ := s.Hold(airlock.Output{Job: "job-1", Name: "notes.txt", Data: []byte("all good\n")}, airlock.Permissions{})
	bad, _ := s.Hold(airlock.Output{Job: "job-1", Name: "small.json", Data: airlockModel(3)}, airlock.Permissions{})

	// Scopes: only an admin token for all datasets.
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/v1/airlock"}, {"GET", "/api/v1/airlock/" + m.ID}, {"GET", "/api/v1/airlock/" + m.ID + "/content"},
		{"POST", "/api/v1/airlock/" + m.ID + "/release"}, {"POST", "/api/v1/airlock/" + m.ID + "/reject"},
	} {
		for _, tok := range []string{read, lungAdmin} {
			if resp, b := do(t, p.method, srv.URL+p.path, tok, "", nil, ""); resp.StatusCode != 403 {
				t.Errorf("%s %s with a non-admin token: %d %s", p.method, p.path, resp.StatusCode, b)
			}
		}
		if resp, _ := do(t, p.method, srv.URL+p.path, "", "", nil, ""); resp.StatusCode != 401 {
			t.Errorf("%s %s without a token: %d", p.method, p.path, resp.StatusCode)
		}
	}
	resp, b := do(t, "GET", srv.URL+"/api/v1/airlock?state=held", admin, "", nil, "")
	var list struct {
		Outputs []airlock.Held
		Policy  airlock.Policy
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &list) != nil || len(list.Outputs) != 2 || !list.Policy.TwoPerson {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", srv.URL+"/api/v1/airlock/"+m.ID+"/content", admin, "", nil, "")
	if resp.StatusCode != 200 || !bytes.Equal(b, airlockModel(40)) || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("content: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/airlock/out-0000000000000000000f", admin, "", nil, ""); resp.StatusCode != 404 {
		t.Fatalf("unknown id: %d", resp.StatusCode)
	}
	// Two people: the first approval, the same person again refused, the
	// second releases.
	resp, b = do(t, "POST", srv.URL+"/api/v1/airlock/"+m.ID+"/release", admin, "", nil, "")
	var h airlock.Held
	if resp.StatusCode != 200 || json.Unmarshal(b, &h) != nil || h.State != airlock.StateHeld || len(h.Approvals) != 1 {
		t.Fatalf("first approval: %d %s", resp.StatusCode, b)
	}
	if resp, b := do(t, "POST", srv.URL+"/api/v1/airlock/"+m.ID+"/release", admin, "", nil, ""); resp.StatusCode != 409 {
		t.Fatalf("same person twice: %d %s", resp.StatusCode, b)
	}
	if len(sent) != 0 {
		t.Fatal("sent after one approval")
	}
	resp, b = do(t, "POST", srv.URL+"/api/v1/airlock/"+m.ID+"/release", second, "", nil, "")
	if resp.StatusCode != 200 || json.Unmarshal(b, &h) != nil || h.State != airlock.StateReleased || strings.Join(h.DecidedBy, ",") != "test,bob" {
		t.Fatalf("second approval: %d %s", resp.StatusCode, b)
	}
	if len(sent) != 1 || sent[0] != m.ID {
		t.Fatalf("OnRelease: %v", sent)
	}
	// Reject, and a refused output stays refused.
	resp, b = do(t, "POST", srv.URL+"/api/v1/airlock/"+txt.ID+"/reject", second, "application/json", []byte(`{"reason":"free text with a rare diagnosis"}`), "")
	if resp.StatusCode != 200 || json.Unmarshal(b, &h) != nil || h.State != airlock.StateRejected {
		t.Fatalf("reject: %d %s", resp.StatusCode, b)
	}
	if resp, b := do(t, "POST", srv.URL+"/api/v1/airlock/"+bad.ID+"/release", admin, "", nil, ""); resp.StatusCode != 409 {
		t.Fatalf("release of a refused output: %d %s", resp.StatusCode, b)
	}
	got := strings.Join(auditActions(t, n.cfg.Data), "\n")
	for _, want := range []string{
		"node airlock-hold " + m.ID, "node airlock-hold " + txt.ID, "node airlock-refuse " + bad.ID,
		"person:test airlock-approve " + m.ID, "person:bob airlock-release " + m.ID, "person:bob airlock-reject " + txt.ID,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, got)
		}
	}
}

// TestAirlockAuditBusy: when another writer holds the node's audit log
// (a serving node, seen from the CLI), nothing is decided.
func TestAirlockAuditBusy(t *testing.T) {
	n, _, _ := testNode(t, "sqlite")
	s, err := n.Airlock()
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Hold(airlock.Output{Job: "j", Name: "n.txt", Data: []byte("x\n")}, airlock.Permissions{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := audit.Open(filepath.Join(n.cfg.Data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := s.Release(h.ID, "alice"); !errors.Is(err, errAuditBusy) {
		t.Fatalf("release with the audit log held elsewhere: %v", err)
	}
	if g, _ := s.Get(h.ID); g.State != airlock.StateHeld {
		t.Fatalf("state %s", g.State)
	}
	// The shared log: two holders in this process, closed by the last.
	other.Close()
	a, err := n.acquireAudit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(h.ID, "alice"); err != nil {
		t.Fatalf("release while the link holds the log: %v", err)
	}
	if _, err := a.Append(audit.Entry{Actor: "hub", Action: "search", Subject: "q"}); err != nil {
		t.Fatalf("the link's log was closed by the airlock: %v", err)
	}
	n.releaseAudit()
	if _, err := a.Append(audit.Entry{Actor: "hub", Action: "search", Subject: "q"}); err == nil {
		t.Fatal("the log stayed open after the last release")
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func TestAirlockPage(t *testing.T) {
	n, srv, admin := testNode(t, "sqlite")
	n.cfg.Airlock = airlock.Policy{ManualRelease: true}
	read, _, _ := n.ix.CreateToken(context.Background(), "reader", index.ScopeRead, "")
	s, _ := n.Airlock()
	h, _ := s.Hold(airlock.Output{Job: "job-7", Name: "counts.csv", Data: []byte("stage,n\nI,12\nII,<script>alert(1)</script>\n")}, airlock.Permissions{})
	h2, _ := s.Hold(airlock.Output{Job: "job-7", Name: "m.json", Data: airlockModel(30)}, airlock.Permissions{})

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.String()
	}
	post := func(path string, form url.Values, origin string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Signed out: the form only, no outputs.
	code, body := get("/airlock")
	if code != 200 || !strings.Contains(body, `name="token"`) || strings.Contains(body, h.ID) {
		t.Fatalf("signed out: %d %s", code, body)
	}
	if code, _ := get("/airlock/" + h.ID + "/content"); code != 401 {
		t.Fatalf("content signed out: %d", code)
	}
	// A read token cannot sign in.
	if code := post("/airlock/login", url.Values{"token": {read}}, ""); code != 401 {
		t.Fatalf("read token sign-in: %d", code)
	}
	if code := post("/airlock/login", url.Values{"token": {admin}}, "https://evil.example"); code != 403 {
		t.Fatalf("cross-site sign-in: %d", code)
	}
	if code := post("/airlock/login", url.Values{"token": {admin}}, ""); code != 303 {
		t.Fatalf("sign-in: %d", code)
	}
	u, _ := url.Parse(srv.URL + "/airlock")
	var cookie *http.Cookie
	for _, ck := range jar.Cookies(u) {
		if ck.Name == airlockCookie {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatal("no cookie")
	}
	code, body = get("/airlock")
	if code != 200 || !strings.Contains(body, h.ID) || !strings.Contains(body, "Signed in as test") {
		t.Fatalf("list: %d %s", code, body)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	code, body = get("/airlock/" + h.ID)
	if code != 200 || strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatalf("output page (escaping): %d", code)
	}
	// CSRF: no token, a wrong one, another origin: refused, nothing decided.
	for _, bad := range []struct {
		form   url.Values
		origin string
	}{{url.Values{}, ""}, {url.Values{"csrf": {strings.Repeat("0", 64)}}, ""}, {url.Values{"csrf": {m[1]}}, "https://evil.example"}} {
		if code := post("/airlock/"+h.ID+"/release", bad.form, bad.origin); code != 403 {
			t.Errorf("release with %v from %q: %d", bad.form, bad.origin, code)
		}
	}
	if g, _ := s.Get(h.ID); g.State != airlock.StateHeld {
		t.Fatalf("decided without a valid CSRF token: %s", g.State)
	}
	if code := post("/airlock/"+h.ID+"/release", url.Values{"csrf": {m[1]}}, srv.URL); code != 303 {
		t.Fatalf("release: %d", code)
	}
	if g, _ := s.Get(h.ID); g.State != airlock.StateReleased || g.DecidedBy[0] != "test" {
		t.Fatalf("after release: %+v", g)
	}
	if code := post("/airlock/"+h2.ID+"/reject", url.Values{"csrf": {m[1]}, "reason": {"not needed"}}, ""); code != 303 {
		t.Fatalf("reject: %d", code)
	}
	if g, _ := s.Get(h2.ID); g.State != airlock.StateRejected || g.Reason != "not needed" {
		t.Fatalf("after reject: %+v", g)
	}
	// Deciding again: a conflict, shown on the page.
	if code := post("/airlock/"+h2.ID+"/release", url.Values{"csrf": {m[1]}}, ""); code != 409 {
		t.Fatalf("release after reject: %d", code)
	}
	// The cookie is HttpOnly and SameSite=Strict.
	req, _ := http.NewRequest("POST", srv.URL+"/airlock/login", strings.NewReader(url.Values{"token": {admin}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	raw, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	sc := raw.Header.Get("Set-Cookie")
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Fatalf("cookie %q", sc)
	}
}

// TestAirlockPolicyValidated: a node set weaker than ACRO's defaults does
// not open.
func TestAirlockPolicyValidated(t *testing.T) {
	c := Config{Data: t.TempDir(), Airlock: airlock.Policy{CellThreshold: 3}}
	c.Defaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "cell_threshold") {
		t.Fatalf("a cell threshold of 3 accepted: %v", err)
	}
	c.Airlock = airlock.Policy{CellThreshold: 20, TwoPerson: true}
	if err := c.Validate(); err != nil {
		t.Fatalf("a stricter policy refused: %v", err)
	}
}

// TestAirlockInputs: the pseudonyms of a snapshot's patients, and its
// study UIDs, are recognised in outputs and logs.
func TestAirlockInputs(t *testing.T) {
	ctx := context.Background()
	n, srv, tok, ingest := snapshotNode(t, "sqlite", 1)
	ingest(0, 3)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
		t.Fatal(err)
	}
	members := datasetStudies(t, srv, tok)
	is, patients, err := n.AirlockInputs(ctx, "lung", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if patients != 3 || len(members) == 0 {
		t.Fatalf("%d patients, %d members", patients, len(members))
	}
	for _, m := range members {
		if !is(m.Patient) || !is(m.Study) {
			t.Fatalf("%s / %s not recognised", m.Patient, m.Study)
		}
	}
	if is("MOSAIC-NOTAPATIENT0000") {
		t.Fatal("a stranger recognised")
	}
	csv := "patient,age\n" + members[0].Patient + ",61\n"
	v := airlock.Check(airlock.Policy{}, airlock.Permissions{}, airlock.Output{Name: "x.csv", Data: []byte(csv), IsPseudonym: is, InputRows: []int{patients}})
	if v.Decision != airlock.Refuse {
		t.Fatalf("%+v", v)
	}
	f := airlock.NewLogFilter(airlock.Policy{}, is)
	if ok, _ := f.Line("reading study " + members[0].Study); ok {
		t.Fatal("a study UID released in a log")
	}
}

package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	smtp "github.com/emersion/go-smtp"

	"github.com/mosaic-imaging/mosaic/internal/demo"
	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
	"github.com/mosaic-imaging/mosaic/internal/viewer"
	"github.com/mosaic-imaging/mosaic/internal/viewer/viewertest"
)

// e2eMail records who each mail went to.
type e2eMail struct {
	mu  sync.Mutex
	got [][]string // recipients per mail
}

type e2eSession struct {
	m  *e2eMail
	to []string
}

func (s *e2eSession) Reset()                                    { s.to = nil }
func (s *e2eSession) Logout() error                             { return nil }
func (s *e2eSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *e2eSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }
func (s *e2eSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	s.m.mu.Lock()
	s.m.got = append(s.m.got, slices.Clone(s.to))
	s.m.mu.Unlock()
	return nil
}

// take returns the distinct recipients of the mails since the last call.
func (m *e2eMail) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, to := range m.got {
		for _, a := range to {
			seen[a] = true
		}
	}
	m.got = nil
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func e2eMailbox(t *testing.T) (*e2eMail, string) {
	m := &e2eMail{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &e2eSession{m: m}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return m, l.Addr().String()
}

// e2eNeeds fails in CI, and skips elsewhere, when a part of the real
// path is missing here.
func e2eNeeds(t *testing.T) {
	var missing []string
	if _, err := os.Stat(testutil.ChromiumPath); err != nil {
		missing = append(missing, testutil.ChromiumPath+" (apt-get install chromium)")
	}
	if !viewer.Built(viewer.Assets()) {
		missing = append(missing, "the viewer (make viewer, before go test)")
	}
	if err := viewertest.Ready(); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the end-to-end test needs: %s (make test installs and builds them)", strings.Join(missing, "; "))
	}
	t.Skipf("the end-to-end test needs: %s", strings.Join(missing, "; "))
}

// TestAccessEndToEnd walks the road from a count to the images with
// real parts: an OpenID provider, an SMTP server, the demo's hub and
// three nodes over NATS with synthetic DICOM data, headless Chromium
// and dicomweb-client. A researcher logs in through the provider, finds
// a cohort, asks for it; an admin checks the form; each node's
// representative decides (one approves, one sets conditions the
// researcher accepts, one declines); the nodes freeze their cohorts and
// the hub signs permits; the researcher reads the snapshot through the
// hub's relay (searches, metadata, frames) and in the viewer; a study
// outside the snapshot does not exist for the permit; a revocation
// reaches the node within a second; every party got the mails that
// concerned them and no others.
func TestAccessEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the end-to-end test takes a minute")
	}
	e2eNeeds(t)
	mail, mailAddr := e2eMailbox(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	op := newTestOP(t, "http://"+addr)
	op.addUser(&testOPUser{sub: "r0sa", username: "rosa", password: "rosa-pass", email: "rosa@uni.example", name: "Rosa Example", groups: []string{"mosaic-researchers"}})

	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan demo.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{Data: data, Addr: addr,
			Hub: func(c *hub.Config) {
				c.OIDC = oidc.Config{Issuer: op.issuer, ClientID: testOPClientID, ClientSecret: testOPClientSecret, Name: "Test Login", Mapping: oidcTestMapping}
				c.SMTP = hub.SMTPConfig{Addr: mailAddr, From: "hub@hub.example", TLS: "insecure"}
				c.RevocationInterval = 300 * time.Millisecond
			},
			Ready: func(info demo.Info, _ time.Duration) { ready <- info }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	var info demo.Info
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("demo stopped: %v", err)
	case <-time.After(4 * time.Minute):
		t.Fatal("the demo was not ready in 4 minutes")
	}
	hubURL := info.HubURL
	north, south, east := info.Nodes[0], info.Nodes[1], info.Nodes[2]
	repMail := func(n demo.Node) string { return n.Representative + "@" + n.Name + ".example" }
	mail.take()

	// The researcher logs in through the provider's page.
	bctx := e2eBrowser(t)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(hubURL+"/login?next=/access"),
		chromedp.WaitVisible(chromedp.ID("oidc-login")),
		chromedp.Click(chromedp.ID("oidc-login")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "rosa"),
		chromedp.SendKeys(chromedp.ID("password"), "rosa-pass"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS(".who")),
	); err != nil {
		t.Fatalf("log in through the provider: %v", err)
	}
	rosa := oidc.UserID(op.issuer, "r0sa")
	now := time.Now()
	rosaTok := op.mint(t, map[string]any{"iss": op.issuer, "sub": "r0sa", "aud": []string{testOPClientID}, "exp": now.Add(30 * time.Minute).Unix(),
		"iat": now.Unix(), "groups": []string{"mosaic-researchers"}, "email": "rosa@uni.example", "email_verified": true})

	api := func(token, method, path string, body any, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, hubURL+path, rd)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
		if resp.StatusCode >= 300 {
			t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode
	}

	// A count first: women, at every node.
	female := json.RawMessage(`{"operand":"AND","children":[{"key":"SNOMEDCT263495000","type":"EQUALS","system":"","value":"SNOMEDCT248152002"}]}`)
	var found struct {
		Results []struct {
			Node, Dataset string
			Subjects      int `json:"subjects_count"`
		}
	}
	if st := api(rosaTok, "POST", "/api/v1/search", female, &found); st != 200 || len(found.Results) != 3 {
		t.Fatalf("search: %d, %+v", st, found)
	}

	// The request, over the three datasets.
	var datasets []map[string]string
	for _, n := range info.Nodes {
		datasets = append(datasets, map[string]string{"node": n.Name, "dataset": n.Dataset})
	}
	var req struct{ ID string }
	if st := api(rosaTok, "POST", "/api/v1/access-requests", map[string]any{"title": "Nodule detection in women", "description": "Training and validation of a detector.",
		"duo": []string{"DUO:0000042"}, "query": female, "datasets": datasets, "operations": []string{"view", "download"}, "days": 30}, &req); st != 201 || req.ID == "" {
		t.Fatalf("create: %d %+v", st, req)
	}
	base := "/api/v1/access-requests/" + req.ID
	if st := api(rosaTok, "POST", base+"/submit", nil, nil); st != 200 {
		t.Fatalf("submit: %d", st)
	}
	if got, want := mail.take(), []string{"admin@hub.example"}; !slices.Equal(got, want) {
		t.Errorf("mail on submission to %v, want %v", got, want)
	}
	// Another researcher cannot even tell the request exists.
	if st := api(info.ResearcherToken, "POST", base+"/review", map[string]string{"decision": "approve", "message": "fine"}, nil); st != 404 {
		t.Errorf("another researcher reviewed a request: %d, want 404", st)
	}
	if st := api(info.AdminToken, "POST", base+"/review", map[string]string{"decision": "approve", "message": "The form is complete."}, nil); st != 200 {
		t.Fatalf("review: %d", st)
	}
	if got, want := mail.take(), []string{repMail(east), repMail(north), repMail(south), "rosa@uni.example"}; !slices.Equal(got, sorted(want)) {
		t.Errorf("mail on review to %v, want %v", got, sorted(want))
	}

	decide := func(n demo.Node, token, decision, msg string) int {
		return api(token, "POST", base+"/datasets/"+n.Name+"/"+n.Dataset+"/decision", map[string]string{"decision": decision, "message": msg}, nil)
	}
	if st := decide(south, north.RepresentativeToken, "approve", ""); st != 403 {
		t.Errorf("north's representative decided for south: %d, want 403", st)
	}
	if st := decide(north, north.RepresentativeToken, "approve", "Granted."); st != 200 {
		t.Fatalf("north approves: %d", st)
	}
	if got, want := mail.take(), []string{"rosa@uni.example"}; !slices.Equal(got, want) {
		t.Errorf("mail on north's decision to %v, want %v", got, want)
	}
	if st := decide(south, south.RepresentativeToken, "conditions", "Cite the registry in every publication."); st != 200 {
		t.Fatalf("south sets conditions: %d", st)
	}
	if st := api(rosaTok, "POST", base+"/datasets/"+south.Name+"/"+south.Dataset+"/accept-conditions", nil, nil); st != 200 {
		t.Fatalf("accept conditions: %d", st)
	}
	if st := decide(south, south.RepresentativeToken, "approve", "Granted under the conditions."); st != 200 {
		t.Fatalf("south approves: %d", st)
	}
	if st := decide(east, east.RepresentativeToken, "decline", "Not for this purpose."); st != 200 {
		t.Fatalf("east declines: %d", st)
	}
	for _, a := range mail.take() {
		if a != "rosa@uni.example" && a != repMail(south) {
			t.Errorf("a mail of the south and east decisions went to %s", a)
		}
	}

	var got struct {
		Researcher string
		State      string
		Snapshot   string
		Datasets   []struct{ Node, Dataset, State string }
		Permits    []struct {
			ID, Node, Dataset, Token string
			Operations               []string
		}
	}
	if st := api(rosaTok, "GET", base, nil, &got); st != 200 || got.Snapshot == "" || len(got.Permits) != 2 {
		t.Fatalf("request: %d %+v", st, got)
	}
	if got.Researcher != rosa {
		t.Errorf("the request is %q's, want the provider's user %q", got.Researcher, rosa)
	}
	if got.State != "closed" {
		t.Errorf("request state %q, want closed", got.State)
	}
	var northPermit string
	for _, p := range got.Permits {
		if p.Token == "" || strings.Count(p.Token, ".") != 2 {
			t.Errorf("permit %s has no JWS", p.ID)
		}
		if p.Node == north.Name {
			northPermit = p.ID
		}
	}
	if northPermit == "" {
		t.Fatalf("no permit for north: %+v", got.Permits)
	}
	// The snapshot's public page, without a log-in.
	resp, err := http.Get(hubURL + "/snapshots/" + got.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), north.Dataset) {
		t.Errorf("snapshot page: %d", resp.StatusCode)
	}

	// Through the relay: the snapshot's studies, and only them.
	root := hubURL + "/dicom-web/permits/" + northPermit + "/"
	relayStudies := e2eStudies(t, root+"studies", rosaTok)
	direct := e2eStudies(t, north.URL+"/dicom-web/"+north.Dataset+"/studies", north.Token)
	if len(relayStudies) == 0 || len(relayStudies) >= len(direct) {
		t.Fatalf("relay lists %d studies, the node holds %d: want some, not all (women only)", len(relayStudies), len(direct))
	}
	var outside string
	for _, s := range direct {
		if !slices.Contains(relayStudies, s) {
			outside = s
			break
		}
	}
	for _, c := range []struct {
		who, token, path string
		want             int
	}{
		{"the researcher, outside the snapshot", rosaTok, root + "studies/" + outside + "/metadata", 404},
		{"another researcher", info.ResearcherToken, root + "studies", 404},
		{"nobody", "", root + "studies", 401},
	} {
		r, _ := http.NewRequest("GET", c.path, nil)
		if c.token != "" {
			r.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.who, resp.StatusCode, c.want)
		}
	}

	// dicomweb-client reads the snapshot through the relay: searches,
	// metadata and frames, checked against the node's own answers.
	want := viewertest.Want{}
	for _, s := range relayStudies {
		want[s] = e2eSeries(t, north.URL+"/dicom-web/"+north.Dataset+"/studies/"+s, north.Token)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	report, err := viewertest.Run(rctx, strings.TrimSuffix(root, "/"), rosaTok, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range report.Check(want) {
		t.Error(err)
	}

	// The viewer, with the session of the provider's log-in.
	v, err := viewertest.Open(bctx, hubURL+"/viewer/?permit="+northPermit)
	if err != nil {
		t.Fatalf("viewer: %v", err)
	}
	if v.Distinct < 8 || v.Width == 0 || v.CSP != 0 {
		t.Errorf("the viewer drew %+v: want an image", v)
	}

	// Revocation by the representative reaches the node within a
	// second; the relay refuses the permit.
	t0 := time.Now()
	if st := api(north.RepresentativeToken, "POST", "/api/v1/permits/"+northPermit+"/revoke", map[string]string{}, nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	nodeAudit := filepath.Join(data, "nodes", north.Name, "audit.log")
	for !e2eLogHas(t, nodeAudit, "permit-revoked", northPermit) {
		if time.Since(t0) > time.Second {
			t.Fatalf("the revocation did not reach the node within a second")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revocation at the node after %s", time.Since(t0).Round(time.Millisecond))
	r, _ := http.NewRequest("GET", root+"studies", nil)
	r.Header.Set("Authorization", "Bearer "+rosaTok)
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != 403 {
		t.Errorf("a revoked permit through the relay: %v %v, want 403", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	// Both audit logs hold the uses.
	if !e2eLogHas(t, nodeAudit, "permit-use", northPermit) {
		t.Error("the node's audit log has no permit-use record")
	}
	if !e2eLogHas(t, filepath.Join(data, "hub", "audit.log"), "permit-relay", northPermit) {
		t.Error("the hub's audit log has no permit-relay record")
	}
}

func sorted(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }

// e2eBrowser starts headless Chromium for the rest of the test.
func e2eBrowser(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(testutil.Browser(t, context.Background()), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// e2eStudies lists the Study Instance UIDs of a QIDO-RS answer.
func e2eStudies(t *testing.T, url, token string) []string {
	t.Helper()
	var out []string
	for _, o := range e2eQIDO(t, url, token) {
		out = append(out, o["0020000D"])
	}
	sort.Strings(out)
	return out
}

// e2eSeries lists a study's series and their instances from the node.
func e2eSeries(t *testing.T, study, token string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, s := range e2eQIDO(t, study+"/series", token) {
		for _, i := range e2eQIDO(t, study+"/series/"+s["0020000E"]+"/instances", token) {
			out[s["0020000E"]] = append(out[s["0020000E"]], i["00080018"])
		}
	}
	return out
}

// e2eQIDO returns the first value of each attribute of each result.
func e2eQIDO(t *testing.T, url, token string) []map[string]string {
	t.Helper()
	r, _ := http.NewRequest("GET", url, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Accept", "application/dicom+json")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	var res []map[string]struct{ Value []any }
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("QIDO %s: %d %v", url, resp.StatusCode, err)
	}
	var out []map[string]string
	for _, o := range res {
		m := map[string]string{}
		for tag, a := range o {
			if len(a.Value) > 0 {
				if s, ok := a.Value[0].(string); ok {
					m[tag] = s
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// e2eLogHas reports whether an audit log has a record with action that
// mentions what.
func e2eLogHas(t *testing.T, path, action, what string) bool {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, `"`+action+`"`) && strings.Contains(l, what) {
			return true
		}
	}
	return false
}

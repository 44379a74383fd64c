package hub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// recordingForwarder records what the relay route hands it and answers
// 200 "relayed".
type recordingForwarder struct {
	mu   sync.Mutex
	got  []fed.RelayRequest
	node []string
}

func (f *recordingForwarder) Forward(w http.ResponseWriter, r *http.Request, node string, req fed.RelayRequest) {
	f.mu.Lock()
	f.got = append(f.got, req)
	f.node = append(f.node, node)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/dicom+json")
	w.Write([]byte("relayed"))
}

func (f *recordingForwarder) calls() []fed.RelayRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fed.RelayRequest(nil), f.got...)
}

type relayEnv struct {
	h              *Hub
	srv            *httptest.Server
	fwd            *recordingForwarder
	rosa, bob      string // bearer tokens
	rosaSession    string
	granted        string // rosa's permit
	revoked, stale string // rosa's revoked and expired permits
}

// relayTestHub serves a hub whose permits hook knows four permits:
// rosa's granted, revoked and expired ones, and bob's.
func relayTestHub(t *testing.T, cfg Config) relayEnv {
	t.Helper()
	ctx := context.Background()
	h := grantHubConfig(t, cfg)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	e := relayEnv{h: h, srv: srv, fwd: &recordingForwarder{}, granted: "pm-granted", revoked: "pm-revoked", stale: "pm-stale"}
	for _, u := range []string{"rosa", "bob"} {
		if err := h.AddUser(ctx, u, "a long enough password", RoleResearcher); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if e.rosa, err = h.NewUserToken(ctx, "rosa", "test"); err != nil {
		t.Fatal(err)
	}
	if e.bob, err = h.NewUserToken(ctx, "bob", "test"); err != nil {
		t.Fatal(err)
	}
	if e.rosaSession, err = h.store.NewSession(ctx, "rosa", KindSession, "web", time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	type owned struct {
		user string
		ref  PermitRef
	}
	known := map[string]owned{
		"pm-granted": {"rosa", PermitRef{Node: "north", Token: "jws.of.granted", Expires: future}},
		"pm-revoked": {"rosa", PermitRef{Node: "north", Token: "jws.of.revoked", Expires: future, Revoked: true}},
		"pm-stale":   {"rosa", PermitRef{Node: "north", Token: "jws.of.stale", Expires: time.Now().Add(-time.Minute)}},
		"pm-bobs":    {"bob", PermitRef{Node: "south", Token: "jws.of.bobs", Expires: future}},
	}
	h.SetPermits(func(ctx context.Context, id, user string) (PermitRef, error) {
		if !permitID.MatchString(id) {
			t.Errorf("the permits hook was asked for %q, not a permit id", id)
		}
		p, ok := known[id]
		if !ok || p.user != user {
			return PermitRef{}, fmt.Errorf("permit %s: %w", id, ErrNotFound)
		}
		return p.ref, nil
	})
	h.SetForwarder(e.fwd)
	return e
}

func grantHubConfig(t *testing.T, cfg Config) *Hub {
	t.Helper()
	cfg.Data, cfg.NATSListen = t.TempDir(), "127.0.0.1:0"
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// relayDo sends method to the raw path (sent as written: escapes and
// dot segments kept) with a bearer token and a cookie when not empty,
// following redirects.
func relayDo(t *testing.T, e relayEnv, method, rawPath, bearer, cookie string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//" + req.URL.Host + rawPath
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	}
	req.Header.Set("Accept", "application/dicom+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRelayRouteForwards: a researcher's request under their permit is
// handed to the forwarder with the permit's token, the researcher, the
// path below the root, the root on the hub and the allowed headers, and
// is on record.
func TestRelayRouteForwards(t *testing.T) {
	e := relayTestHub(t, Config{})
	paths := []string{
		"/studies",
		"/series",
		"/instances",
		"/studies/1.2.3",
		"/studies/1.2.3/metadata",
		"/studies/1.2.3/rendered",
		"/studies/1.2.3/series",
		"/studies/1.2.3/instances",
		"/studies/1.2.3/series/4.5",
		"/studies/1.2.3/series/4.5/metadata",
		"/studies/1.2.3/series/4.5/instances",
		"/studies/1.2.3/series/4.5/instances/6.7.8",
		"/studies/1.2.3/series/4.5/instances/6.7.8/metadata",
		"/studies/1.2.3/series/4.5/instances/6.7.8/frames/1",
		"/studies/1.2.3/series/4.5/instances/6.7.8/frames/1,2,30/rendered",
		"/studies/1.2.3/series/4.5/instances/6.7.8/bulk/7fe00010",
		"/studies/1.2.3/series/4.5/instances/6.7.8/bulk/00540016/0/00181072",
		"/archive/manifest",
		"/archive/objects/6.7.8",
	}
	for _, p := range paths {
		code, body := relayDo(t, e, "GET", relayPrefix+e.granted+p+"?limit=10&offset=0", e.rosa, "")
		if code != 200 || body != "relayed" {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	got := e.fwd.calls()
	if len(got) != len(paths) {
		t.Fatalf("forwarder called %d times, want %d", len(got), len(paths))
	}
	for i, req := range got {
		if req.Path != paths[i] || req.Permit != "jws.of.granted" || req.Researcher != "rosa" || req.Method != "GET" ||
			req.Root != e.srv.URL+relayPrefix+e.granted+"/" || req.Query != "limit=10&offset=0" || e.fwd.node[i] != "north" {
			t.Errorf("forwarded %+v to %s", req, e.fwd.node[i])
		}
		if len(req.Header) != 1 || req.Header["Accept"][0] != "application/dicom+json" {
			t.Errorf("headers passed on: %v (want Accept only: never Authorization or Cookie)", req.Header)
		}
	}
	recs := auditActions(t, e.h, actionPermitRelay)
	if len(recs) != len(paths) || recs[0]["path"] != "/studies" || recs[0]["node"] != "north" || recs[0]["method"] != "GET" {
		t.Errorf("%d permit-relay records, first %v", len(recs), recs)
	}

	// The session cookie of the web pages works for GET only; HEAD
	// carries the method on.
	if code, _ := relayDo(t, e, "GET", relayPrefix+e.granted+"/studies", "", e.rosaSession); code != 200 {
		t.Errorf("GET with the session cookie: %d, want 200", code)
	}
	if code, _ := relayDo(t, e, "HEAD", relayPrefix+e.granted+"/studies", "", e.rosaSession); code != 401 {
		t.Errorf("HEAD with the session cookie only: %d, want 401", code)
	}
	if code, _ := relayDo(t, e, "HEAD", relayPrefix+e.granted+"/studies", e.rosa, ""); code != 200 {
		t.Errorf("HEAD with a bearer token: %d, want 200", code)
	}
	if got := e.fwd.calls(); got[len(got)-1].Method != "HEAD" {
		t.Errorf("HEAD forwarded as %s", got[len(got)-1].Method)
	}
}

// TestRelayRouteRoot: the root handed on is under the hub's public URL
// when it has one.
func TestRelayRouteRoot(t *testing.T) {
	e := relayTestHub(t, Config{PublicURL: "https://hub.example/"})
	if code, _ := relayDo(t, e, "GET", relayPrefix+e.granted+"/studies", e.rosa, ""); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	if got := e.fwd.calls(); got[0].Root != "https://hub.example/dicom-web/permits/pm-granted/" {
		t.Errorf("root %q", got[0].Root)
	}
}

// TestRelayRouteRefuses: no log-in is 401; a permit unknown or another
// researcher's is 404, a revoked or expired one 403; paths outside the
// DICOMweb shapes (escapes, dot segments, bad UIDs) are 400 or 404;
// other methods 405; without a forwarder 503. Nothing refused reaches
// the forwarder.
func TestRelayRouteRefuses(t *testing.T) {
	e := relayTestHub(t, Config{})
	base := relayPrefix + e.granted
	cases := []struct {
		method, path, bearer, cookie string
		want                         []int
	}{
		{"GET", base + "/studies", "", "", []int{401}},
		{"GET", base + "/studies", "not-a-token", "", []int{401}},
		{"GET", base + "/studies", "", "not-a-session", []int{401}},
		{"GET", relayPrefix + "pm-bobs/studies", e.rosa, "", []int{404}},
		{"GET", base + "/studies", e.bob, "", []int{404}},
		{"GET", relayPrefix + "pm-unknown/studies", e.rosa, "", []int{404}},
		{"GET", relayPrefix + "pm%2Dgranted/studies", e.rosa, "", []int{400, 404}},
		{"GET", relayPrefix + strings.Repeat("p", 129) + "/studies", e.rosa, "", []int{404}},
		{"GET", relayPrefix + "-pm/studies", e.rosa, "", []int{404}},
		{"GET", relayPrefix + "pm;x/studies", e.rosa, "", []int{404}},
		{"GET", relayPrefix + e.revoked + "/studies", e.rosa, "", []int{403}},
		{"GET", relayPrefix + e.stale + "/studies", e.rosa, "", []int{403}},
		{"GET", base + "/", e.rosa, "", []int{400}},
		{"GET", base, e.rosa, "", []int{400, 404}},
		{"GET", base + "/studies/", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2.3/../../../../api/v1/nodes", e.rosa, "", []int{400, 404}},
		{"GET", base + "/studies/1.2.3/%2e%2e/%2e%2e", e.rosa, "", []int{400, 404}},
		{"GET", base + "/studies/1.2.3%2F..%2F..", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2.3%2fseries", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2.3%5c..", e.rosa, "", []int{400}},
		{"GET", base + "/studies/../../pm-bobs/studies", e.rosa, "", []int{404}},
		{"GET", base + "/studies/1..2", e.rosa, "", []int{400}},
		{"GET", base + "/studies/.1.2", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2.", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2.3a", e.rosa, "", []int{400}},
		{"GET", base + "/studies/" + strings.Repeat("1", 65), e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2/series/3/instances/4/frames/0", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2/series/3/instances/4/frames/-1", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2/series/3/instances/4/frames/1,,2", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2/series/3/instances/4/bulk/7fe0", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2/series/3/instances/4/bulk/7fe00010/0", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2/series/3/instances/4/bulk/7fe0001g", e.rosa, "", []int{400}},
		{"GET", base + "/studies/1.2/thumbnail", e.rosa, "", []int{400}},
		{"GET", base + "/archive", e.rosa, "", []int{400}},
		{"GET", base + "/archive/objects/x", e.rosa, "", []int{400}},
		{"GET", base + "/api/v1/nodes", e.rosa, "", []int{400}},
		{"GET", base + "/studies?" + strings.Repeat("a", maxRelayQuery+1), e.rosa, "", []int{400}},
		{"POST", base + "/studies", e.rosa, "", []int{405}},
		{"DELETE", base + "/studies/1.2", e.rosa, "", []int{405}},
		{"OPTIONS", base + "/studies", e.rosa, "", []int{405}},
	}
	for _, c := range cases {
		code, body := relayDo(t, e, c.method, c.path, c.bearer, c.cookie)
		ok := false
		for _, w := range c.want {
			ok = ok || code == w
		}
		if !ok {
			t.Errorf("%s %s: %d %s, want %v", c.method, c.path, code, strings.TrimSpace(body), c.want)
		}
		if code == 403 && !strings.Contains(body, "revoked") && !strings.Contains(body, "expired") {
			t.Errorf("%s %s: 403 without saying why: %s", c.method, c.path, body)
		}
		if code == 400 && strings.Contains(c.path, "%") && !strings.Contains(body, "escaped characters") {
			t.Errorf("%s %s: 400 without saying why: %s", c.method, c.path, body)
		}
	}
	if got := e.fwd.calls(); len(got) != 0 {
		t.Errorf("refused requests reached the forwarder: %+v", got)
	}
	if recs := auditActions(t, e.h, actionPermitRelay); len(recs) != 0 {
		t.Errorf("refused requests are on record as relayed: %v", recs)
	}

	e.h.SetForwarder(nil)
	if code, body := relayDo(t, e, "GET", base+"/studies", e.rosa, ""); code != 503 {
		t.Errorf("without a forwarder: %d %s, want 503", code, body)
	}
}

// TestRelayPath checks the path grammar without a server.
func TestRelayPath(t *testing.T) {
	for path, want := range map[string]string{
		"/dicom-web/permits/p/studies":                                                    "/studies",
		"/dicom-web/permits/p/studies/1.2/series/3/instances/4/frames/7":                  "/studies/1.2/series/3/instances/4/frames/7",
		"/dicom-web/permits/p/archive/objects/1.2":                                        "/archive/objects/1.2",
		"/dicom-web/permits/p/studies/1.2/series/3/instances/4/bulk/7FE00010":             "/studies/1.2/series/3/instances/4/bulk/7FE00010",
		"/dicom-web/permits/q/studies":                                                    "",
		"/dicom-web/permits/p/studies/1.2/series/3/instances/4/frames":                    "",
		"/dicom-web/permits/p/studies/1.2/series/3/instances/4/frames/+1":                 "",
		"/dicom-web/permits/p/studies/1.2/series/3/instances/4/bulk/7fe00010/+0/00181072": "",
		"/dicom-web/permits/p/studies/1.2/series/3/instances/4/frames/1/rendered/x":       "",
		"/dicom-web/permits/p/studies/1.2/series//instances":                              "",
		"/dicom-web/permits/p/studies/1.2/series/3/instances/4/metadata/x":                "",
	} {
		got, err := relayPath(path, "p")
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
	}
}

// TestRelayRouteNeedsAudit: a request that cannot be put on record is
// refused (503) and never relayed.
func TestRelayRouteNeedsAudit(t *testing.T) {
	e := relayTestHub(t, Config{})
	e.h.audit = failingAction{auditLog: e.h.audit, action: actionPermitRelay}
	if code, body := relayDo(t, e, "GET", relayPrefix+e.granted+"/studies", e.rosa, ""); code != 503 || !strings.Contains(body, "audit") {
		t.Errorf("audit log unwritable: %d %s, want 503", code, body)
	}
	if got := e.fwd.calls(); len(got) != 0 {
		t.Errorf("relayed without a record: %+v", got)
	}
}

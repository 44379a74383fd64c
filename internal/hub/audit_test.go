package hub

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// count is the number of rows of a table of the hub's state.
func count(t *testing.T, h *Hub, table string) int {
	t.Helper()
	var n int
	if err := h.store.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUnwritableAuditLogRefusesActions: with the hub's audit log closed
// under it (so every append fails), log-ins through the API and the web
// form, searches through the API, the web form and Go, enrolment, and
// adding users, tokens and nodes and removing nodes all fail with a clear
// error (HTTP 503) and change nothing; once the log can be written again
// the same enrolment token works, since the refused enrolment was rolled
// back.
func TestUnwritableAuditLogRefusesActions(t *testing.T) {
	h, srv, tok := testHub(t)
	ctx := context.Background()
	enrolTok, err := h.AddNode(ctx, "north", "North", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddNode(ctx, "south", "South", time.Hour); err != nil {
		t.Fatal(err)
	}
	webLogin := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"user": {"alice"}, "password": {"long enough password"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return serve(h, req, "192.0.2.1:1000")
	}
	r := webLogin()
	if r.Code != http.StatusSeeOther || len(r.Result().Cookies()) == 0 {
		t.Fatalf("web log-in with the audit log working: %d", r.Code)
	}
	cookie := r.Result().Cookies()[0]
	users, sessions, nodes := count(t, h, "users"), count(t, h, "sessions"), count(t, h, "nodes")

	h.audit.Close() // every append fails from now on

	if r := apiLogin(h, "alice", "long enough password", "192.0.2.1:1000"); r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body.String(), "audit log") || strings.Contains(r.Body.String(), "token") {
		t.Errorf("API log-in: %d %s", r.Code, r.Body)
	}
	if r := webLogin(); r.Code != http.StatusServiceUnavailable || len(r.Result().Cookies()) != 0 || !strings.Contains(r.Body.String(), "audit log") {
		t.Errorf("web log-in: %d, cookies %v", r.Code, r.Result().Cookies())
	}
	if _, err := h.Login(ctx, "alice", "long enough password", "192.0.2.1:1000", "api"); !errors.Is(err, ErrAudit) {
		t.Errorf("Login: %v, want ErrAudit", err)
	}

	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || body["results"] != nil {
		t.Errorf("API search: %d %v", resp.StatusCode, body)
	}
	q, _ := lens.NewQuery(lens.AllOf())
	if res, err := h.Search(ctx, User{ID: "alice", Role: RoleAdmin}, q); !errors.Is(err, ErrAudit) || res.QueryID != "" {
		t.Errorf("Search: %+v, %v; want ErrAudit and no result", res, err)
	}
	sreq := httptest.NewRequest("POST", "/search", strings.NewReader("gender=female"))
	sreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sreq.AddCookie(cookie)
	if r := serve(h, sreq, "192.0.2.1:1000"); r.Code != http.StatusServiceUnavailable || strings.Contains(r.Body.String(), `id="results-table"`) {
		t.Errorf("web search: %d", r.Code)
	}

	_, key, _ := ed25519.GenerateKey(nil)
	enrol := func() *httptest.ResponseRecorder {
		b, _ := json.Marshal(fed.EnrollRequest{Token: enrolTok, PublicKey: fed.EncodeKey(key.Public().(ed25519.PublicKey)), Version: "test"})
		return serve(h, httptest.NewRequest("POST", "/api/v1/enroll", strings.NewReader(string(b))), "192.0.2.7:1000")
	}
	if r := enrol(); r.Code != http.StatusServiceUnavailable || strings.Contains(r.Body.String(), "nats_password") {
		t.Errorf("enrolment: %d %s", r.Code, r.Body)
	}

	if err := h.AddUser(ctx, "bob", "long enough password", RoleResearcher); !errors.Is(err, ErrAudit) {
		t.Errorf("AddUser: %v", err)
	}
	if tk, err := h.NewUserToken(ctx, "alice", "x"); !errors.Is(err, ErrAudit) || tk != "" {
		t.Errorf("NewUserToken: %q, %v", tk, err)
	}
	if tk, err := h.AddNode(ctx, "west", "West", time.Hour); !errors.Is(err, ErrAudit) || tk != "" {
		t.Errorf("AddNode: %q, %v", tk, err)
	}
	del, _ := http.NewRequest("DELETE", srv.URL+"/api/v1/nodes/south", nil)
	del.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("node removal: %v %v", resp.StatusCode, err)
	}
	if users2, sessions2, nodes2 := count(t, h, "users"), count(t, h, "sessions"), count(t, h, "nodes"); users2 != users || sessions2 != sessions || nodes2 != nodes {
		t.Errorf("users %d→%d, sessions %d→%d, nodes %d→%d: refused actions changed the state", users, users2, sessions, sessions2, nodes, nodes2)
	}
	all, err := h.store.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range all {
		if n.Enrolled != nil || n.Removed != nil {
			t.Errorf("node %s: enrolled %v, removed %v after refused actions", n.ID, n.Enrolled, n.Removed)
		}
	}

	// The log works again (the operator freed the disk, say): the same
	// token enrols, and the enrolment is on record.
	if h.audit, err = openAudit(filepath.Join(h.cfg.Data, "audit.log")); err != nil {
		t.Fatal(err)
	}
	if r := enrol(); r.Code != http.StatusOK {
		t.Fatalf("enrolment with the log back: %d %s", r.Code, r.Body)
	}
	if got := auditActions(t, h, "enroll"); len(got) != 1 {
		t.Errorf("enroll records: %v", got)
	}
	if r := apiLogin(h, "alice", "long enough password", "192.0.2.1:1000"); r.Code != http.StatusOK {
		t.Errorf("API log-in with the log back: %d", r.Code)
	}
	if got := auditActions(t, h, "login"); len(got) != 2 || got[1]["via"] != "api" {
		t.Errorf("login records: %v, want the web one and the API one", got)
	}
}

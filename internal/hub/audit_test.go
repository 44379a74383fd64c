package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/audit"
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

// failingAction is the hub's audit log with one action that cannot be
// written (as when the disk fills between two records).
type failingAction struct {
	auditLog
	action string
}

func (f failingAction) Append(actor, action, subject string, detail map[string]any) error {
	if action == f.action {
		return errors.New("no space left on device")
	}
	return f.auditLog.Append(actor, action, subject, detail)
}

// auditRecord is one record of the hub's audit log as a test reads it.
type auditRecord struct {
	Seq     int            `json:"seq"`
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Subject string         `json:"subject"`
	Detail  map[string]any `json:"detail"`
}

// auditRecords reads the hub's audit log after checking that it verifies.
func auditRecords(t *testing.T, h *Hub) []auditRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.cfg.Data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := audit.Verify(bytes.NewReader(b)); err != nil {
		t.Fatalf("the hub's audit log does not verify: %v", err)
	} else if s.Records == 0 {
		t.Fatal("the hub's audit log is empty")
	}
	var out []auditRecord
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var r auditRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestUnwritableAuditLogSendsNoSearch: a search is on record before any
// node sees it. With the audit log working, searches through the API, the
// web page and Go reach a connected node, and each leaves a "search-issued"
// record (user, canonical query and its hash, the nodes addressed) before
// its "search" record, both under the search's id. With the log unwritable
// the same three searches are refused (503, the page's error, ErrAudit)
// and no search message reaches the node, so it spends no privacy budget.
// When only the result record fails, the node has answered but the result
// is still withheld, and the issued record says the search went out.
func TestUnwritableAuditLogSendsNoSearch(t *testing.T) {
	h, srv, tok := testHub(t)
	ctx := context.Background()
	north := enrollFake(t, h, "north")
	enrollFake(t, h, "south") // enrolled, never connected
	north.connect(t, h)
	received := make(chan string, 16)
	if _, err := north.nc.Subscribe(fed.SubjectSearch, func(m *nats.Msg) {
		task, err := fed.OpenTask(h.PublicKey(), m.Data, north.id, time.Now(), time.Minute, nil)
		if err != nil {
			received <- "unreadable"
			return
		}
		received <- task.ID
		msg, _ := fed.Seal(north.key, north.id, fed.SearchAnswer{Node: north.id, TaskID: task.ID, Floor: 10,
			Datasets: []fed.DatasetResult{{ID: "d", Name: "d", SubjectsCount: 42}}})
		m.Respond(msg)
	}); err != nil {
		t.Fatal(err)
	}
	north.nc.Flush()
	waitUntil(t, 5*time.Second, func() bool { _, ok := h.online()["north"]; return ok })
	// sent returns the ids of the search tasks the node has received
	// since the last call.
	sent := func() []string {
		t.Helper()
		if err := north.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for {
			select {
			case id := <-received:
				ids = append(ids, id)
			case <-time.After(300 * time.Millisecond):
				return ids
			}
		}
	}

	r := serve(h, func() *http.Request {
		req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"user": {"alice"}, "password": {"long enough password"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}(), "192.0.2.1:1000")
	if r.Code != http.StatusSeeOther || len(r.Result().Cookies()) == 0 {
		t.Fatalf("web log-in: %d", r.Code)
	}
	cookie := r.Result().Cookies()[0]
	apiSearch := func() (int, SearchResult) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res SearchResult
		json.NewDecoder(resp.Body).Decode(&res)
		return resp.StatusCode, res
	}
	webSearch := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/search", strings.NewReader("gender=female"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		return serve(h, req, "192.0.2.1:1000")
	}
	q, err := lens.NewQuery(lens.AllOf())
	if err != nil {
		t.Fatal(err)
	}
	alice := User{ID: "alice", Role: RoleAdmin}

	// The log works: every door reaches the node, on record first.
	code, res := apiSearch()
	if code != http.StatusOK || len(res.Results) != 1 || res.Results[0].SubjectsCount != 42 {
		t.Fatalf("API search with the log working: %d %+v", code, res)
	}
	if got := sent(); len(got) != 1 || got[0] != res.QueryID {
		t.Fatalf("the node received %v, want the API search %s", got, res.QueryID)
	}
	if r := webSearch(); r.Code != http.StatusOK || !strings.Contains(r.Body.String(), `id="results-table"`) {
		t.Fatalf("web search with the log working: %d", r.Code)
	}
	if got := sent(); len(got) != 1 {
		t.Fatalf("the node received %v from the web search, want one task", got)
	}
	if _, err := h.Search(ctx, alice, q); err != nil {
		t.Fatal(err)
	}
	if got := sent(); len(got) != 1 {
		t.Fatalf("the node received %v from Search, want one task", got)
	}
	issued := map[string]auditRecord{}
	var searches int
	for _, rec := range auditRecords(t, h) {
		switch rec.Action {
		case "search-issued":
			issued[rec.Subject] = rec
			canon, _ := rec.Detail["query_canonical"].(string)
			sum := sha256.Sum256([]byte(canon))
			if rec.Actor != "user:alice" || !strings.HasPrefix(canon, `{"lens":1,`) || rec.Detail["query_sha256"] != hex.EncodeToString(sum[:]) ||
				fmt.Sprint(rec.Detail["nodes"]) != "[north south]" {
				t.Errorf("search-issued record: %+v", rec)
			}
		case "search":
			searches++
			if is, ok := issued[rec.Subject]; !ok || is.Seq >= rec.Seq || is.Detail["query_sha256"] != rec.Detail["query_sha256"] {
				t.Errorf("search record %s (seq %d) has no search-issued record before it with the same query: %+v", rec.Subject, rec.Seq, is)
			}
		}
	}
	if len(issued) != 3 || searches != 3 {
		t.Errorf("%d search-issued and %d search records after three searches", len(issued), searches)
	}
	if _, ok := issued[res.QueryID]; !ok {
		t.Errorf("no search-issued record for the API search %s", res.QueryID)
	}

	// The log cannot be written: nothing reaches the node.
	h.audit.Close()
	if code, res := apiSearch(); code != http.StatusServiceUnavailable || res.Results != nil {
		t.Errorf("API search with the log unwritable: %d %+v", code, res)
	}
	if r := webSearch(); r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body.String(), "audit log") || strings.Contains(r.Body.String(), `id="results-table"`) {
		t.Errorf("web search with the log unwritable: %d", r.Code)
	}
	if res, err := h.Search(ctx, alice, q); !errors.Is(err, ErrAudit) || res.QueryID != "" {
		t.Errorf("Search with the log unwritable: %+v, %v; want ErrAudit and no result", res, err)
	}
	if got := sent(); len(got) != 0 {
		t.Errorf("with the audit log unwritable the node still received %d search tasks: %v", len(got), got)
	}

	// Only the result record fails: the search went out (and is on
	// record as issued), its result is withheld.
	l, err := openAudit(filepath.Join(h.cfg.Data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	h.audit = failingAction{auditLog: l, action: "search"}
	if res, err := h.Search(ctx, alice, q); !errors.Is(err, ErrAudit) || res.QueryID != "" || res.Results != nil {
		t.Errorf("Search whose result record fails: %+v, %v; want ErrAudit and no result", res, err)
	}
	got := sent()
	if len(got) != 1 {
		t.Fatalf("the node received %v, want the one search issued", got)
	}
	recs := auditRecords(t, h)
	if last := recs[len(recs)-1]; last.Action != "search-issued" || last.Subject != got[0] {
		t.Errorf("last record %+v, want the search-issued record of %s", last, got[0])
	}
}

// TestLargestQueryOnRecord: the largest query the limits allow (200
// manufacturer conditions of 256 bytes, each full of characters JSON
// escapes) still fits in its audit records, so it runs with the log
// working; the issued record then carries the query's hash and its
// description instead of the whole canonical form.
func TestLargestQueryOnRecord(t *testing.T) {
	h, _, _ := testHub(t)
	var conds []*lens.Node
	for i := range lens.DefaultLimits.MaxLeaves {
		v := fmt.Sprintf("%03d", i) + strings.Repeat(`"\`, 253/2) + "x"
		c, err := lens.Contains(lens.Manufacturer, v[:256])
		if err != nil {
			t.Fatal(err)
		}
		conds = append(conds, c)
	}
	q, err := lens.NewQuery(lens.AnyOf(conds...))
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Canonical()) < 50<<10 {
		t.Fatalf("canonical form of %d bytes: not the large query this test needs", len(q.Canonical()))
	}
	res, err := h.Search(context.Background(), User{ID: "alice", Role: RoleResearcher}, q)
	if err != nil {
		t.Fatalf("the largest query: %v", err)
	}
	var found bool
	for _, rec := range auditRecords(t, h) {
		if rec.Action == "search-issued" && rec.Subject == res.QueryID {
			found = true
			sum := sha256.Sum256(q.Canonical())
			if rec.Detail["query_sha256"] != hex.EncodeToString(sum[:]) || rec.Detail["query"] != q.Describe() || rec.Detail["query_canonical_bytes"] == nil {
				t.Errorf("search-issued record of the largest query: %+v", rec.Detail)
			}
		}
	}
	if !found {
		t.Error("no search-issued record for the largest query")
	}
}

package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// fakeNode is a NATS client that enrolled like a node and behaves as
// the test says.
type fakeNode struct {
	id   string
	key  ed25519.PrivateKey
	nc   *nats.Conn
	pass string
}

func enrollFake(t *testing.T, h *Hub, id string) *fakeNode {
	t.Helper()
	ctx := context.Background()
	tok, err := h.AddNode(ctx, id, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	f := &fakeNode{id: id, key: key, pass: fed.NewID()}
	if _, err := h.store.Enroll(ctx, tok, fed.EncodeKey(key.Public().(ed25519.PublicKey)), f.pass, "test", nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// nodeTLS is the TLS of a node's connection: the hub's certificate as
// enrolment hands it out, and a certificate made from key.
func nodeTLS(t *testing.T, h *Hub, key ed25519.PrivateKey) nats.Option {
	t.Helper()
	tc, err := fed.ClientTLS(h.NATSCA(), key, "test")
	if err != nil {
		t.Fatal(err)
	}
	return nats.Secure(tc)
}

func (f *fakeNode) connect(t *testing.T, h *Hub) {
	t.Helper()
	nc, err := nats.Connect(h.NATSURL(), nats.UserInfo(f.id, f.pass), nats.MaxReconnects(0), nodeTLS(t, h, f.key))
	if err != nil {
		t.Fatal(err)
	}
	f.nc = nc
	t.Cleanup(nc.Close)
	msg, _ := fed.Seal(f.key, f.id, fed.Heartbeat{Node: f.id, Version: "test", Time: time.Now()})
	if err := nc.Publish(fed.NodeSubject(f.id, "heartbeat"), msg); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
}

func testHub(t *testing.T) (*Hub, *httptest.Server, string) {
	t.Helper()
	h, err := Open(context.Background(), Config{Data: t.TempDir(), NATSListen: "127.0.0.1:0", SearchDeadline: time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(func() { srv.Close(); h.Close() })
	if err := h.AddUser(context.Background(), "alice", "long enough password", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	tok, err := h.NewUserToken(context.Background(), "alice", "test")
	if err != nil {
		t.Fatal(err)
	}
	return h, srv, tok
}

// TestMisbehavingNodes: a node that answers garbage, one that signs as
// another node, one that never answers and one never connected are each
// reported, the honest node's answer is kept, and the search ends at the
// deadline.
func TestMisbehavingNodes(t *testing.T) {
	h, srv, tok := testHub(t)
	good := enrollFake(t, h, "good")
	garbage := enrollFake(t, h, "garbage")
	impostor := enrollFake(t, h, "impostor")
	silent := enrollFake(t, h, "silent")
	enrollFake(t, h, "offline")
	for _, f := range []*fakeNode{good, garbage, impostor, silent} {
		f.connect(t, h)
	}
	answer := func(f *fakeNode, signer string, key ed25519.PrivateKey, subjects int) {
		f.nc.Subscribe(fed.SubjectSearch, func(m *nats.Msg) {
			task, err := fed.OpenTask(h.PublicKey(), m.Data, f.id, time.Now(), time.Minute, nil)
			if err != nil {
				return
			}
			msg, _ := fed.Seal(key, signer, fed.SearchAnswer{Node: signer, TaskID: task.ID, Floor: 10,
				Datasets: []fed.DatasetResult{{ID: "d", Name: "d", SubjectsCount: subjects}}})
			m.Respond(msg)
		})
		f.nc.Flush()
	}
	answer(good, "good", good.key, 42)
	// The impostor answers first, as "good", with its own key.
	answer(impostor, "good", impostor.key, 999)
	garbage.nc.Subscribe(fed.SubjectSearch, func(m *nats.Msg) { m.Respond([]byte("\x00not json at all")) })
	garbage.nc.Flush()
	// The impostor also tries to speak on another node's subject.
	msg, _ := fed.Seal(impostor.key, "good", fed.Heartbeat{Node: "good", Time: time.Now()})
	impostor.nc.Publish(fed.NodeSubject("good", "heartbeat"), msg)
	impostor.nc.Flush()
	waitUntil(t, 5*time.Second, func() bool { return len(h.online()) == 4 })

	t0 := time.Now()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res SearchResult
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	took := time.Since(t0)
	if took > 3*time.Second {
		t.Errorf("search took %s with a 1 s deadline", took)
	}
	want := map[string]string{"good": NodeAnswered, "garbage": NodeLate, "impostor": NodeLate, "silent": NodeLate, "offline": NodeUnreachable}
	for _, n := range res.Nodes {
		if want[n.Node] != n.Status {
			t.Errorf("node %s: %s, want %s", n.Node, n.Status, want[n.Node])
		}
	}
	if len(res.Nodes) != len(want) || len(res.Results) != 1 || res.Results[0].Node != "good" || res.Results[0].SubjectsCount != 42 {
		t.Fatalf("results: %+v, nodes %+v", res.Results, res.Nodes)
	}
	// Removing a node cuts its connection at once.
	closed := make(chan struct{})
	silent.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := h.RemoveNode(context.Background(), "silent"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("removed node still connected")
	}
	if _, err := nats.Connect(h.NATSURL(), nats.UserInfo("silent", silent.pass), nats.MaxReconnects(0), nodeTLS(t, h, silent.key)); err == nil {
		t.Error("removed node's credentials still accepted")
	}
	// The audit log has the search.
	if b, err := readFile(h.cfg.Data + "/audit.log"); err != nil || !bytes.Contains(b, []byte(`"action":"search"`)) {
		t.Errorf("audit log: %v %s", err, b)
	}
}

// TestEnrollmentTokens: unknown, reused and expired tokens are refused.
func TestEnrollmentTokens(t *testing.T) {
	h, srv, _ := testHub(t)
	ctx := context.Background()
	tok, _ := h.AddNode(ctx, "a", "A", time.Hour)
	expired, _ := h.AddNode(ctx, "b", "B", -time.Second)
	_, key, _ := ed25519.GenerateKey(nil)
	pub := fed.EncodeKey(key.Public().(ed25519.PublicKey))
	post := func(body string) int {
		resp, err := http.Post(srv.URL+"/api/v1/enroll", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post(`{"token":"` + tok + `","public_key":"` + pub + `","version":"t"}`); c != 200 {
		t.Fatalf("good token: %d", c)
	}
	for name, body := range map[string]string{
		"reused":  `{"token":"` + tok + `","public_key":"` + pub + `"}`,
		"expired": `{"token":"` + expired + `","public_key":"` + pub + `"}`,
		"unknown": `{"token":"mhe_nope","public_key":"` + pub + `"}`,
		"bad key": `{"token":"` + tok + `","public_key":"AAAA"}`,
		"garbage": `not json`,
		"extra":   `{"token":"x","public_key":"` + pub + `","admin":true}`,
	} {
		if c := post(body); c != 401 && c != 400 {
			t.Errorf("%s: %d", name, c)
		}
	}
	// A wrong NATS password is refused.
	if _, err := nats.Connect(h.NATSURL(), nats.UserInfo("a", "wrong"), nats.MaxReconnects(0), nodeTLS(t, h, key)); err == nil {
		t.Error("wrong NATS password accepted")
	}
	if _, err := nats.Connect(h.NATSURL(), nats.MaxReconnects(0), nodeTLS(t, h, key)); err == nil {
		t.Error("anonymous NATS connection accepted")
	}
}

func waitUntil(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	testutil.Eventually(t, d, func() error {
		if !ok() {
			return errors.New("the condition is still false")
		}
		return nil
	})
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

// TestAPINeedsBearer: the browser's session cookie does not authenticate
// API calls (only the web pages, whose forms refuse cross-site posts).
func TestAPINeedsBearer(t *testing.T) {
	h, srv, _ := testHub(t)
	sess, err := h.store.NewSession(context.Background(), "alice", KindSession, "browser", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sess})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("search with a session cookie: %d, want 401", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", srv.URL+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
	req.Header.Set("Authorization", "Bearer "+sess)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("search with the session as a bearer token: %d, want 200", resp.StatusCode)
	}
}

// TestPseudonymsAndAlerts: each node gets its own keyed pseudonym of the
// asking user inside the signed task (never the user id, never another
// node's); a node's alert about that user is kept with the user's name,
// one about anyone else is dropped; refusals and budgets reach the page.
func TestPseudonymsAndAlerts(t *testing.T) {
	h, srv, tok := testHub(t)
	north, south := enrollFake(t, h, "north"), enrollFake(t, h, "south")
	bodies := make(chan fed.SearchBody, 2)
	for _, f := range []*fakeNode{north, south} {
		f.connect(t, h)
		f.nc.Subscribe(fed.SubjectSearch, func(m *nats.Msg) {
			task, err := fed.OpenTask(h.PublicKey(), m.Data, f.id, time.Now(), time.Minute, nil)
			if err != nil {
				return
			}
			var body fed.SearchBody
			json.Unmarshal(task.Body, &body)
			bodies <- body
			me := body.Researchers[f.id]
			ans := fed.SearchAnswer{Node: f.id, TaskID: task.ID, Floor: 10,
				Datasets: []fed.DatasetResult{{ID: "d", Name: "d", Refused: "budget-day", Budget: &fed.Budget{DayLeft: 0, TotalLeft: 4.5}}}}
			if f.id == "north" {
				ans.Alerts = []fed.Alert{{Dataset: "d", Researcher: me, Kind: "sweep", Count: 12}, {Dataset: "d", Researcher: "r-someone-else", Kind: "complement", Count: 3}}
			}
			msg, _ := fed.Seal(f.key, f.id, ans)
			m.Respond(msg)
		})
		f.nc.Flush()
	}
	waitUntil(t, 5*time.Second, func() bool { return len(h.online()) == 2 })
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res SearchResult
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	b1, b2 := <-bodies, <-bodies
	pn, ps := b1.Researchers["north"], b1.Researchers["south"]
	if pn == "" || ps == "" || pn == ps || strings.Contains(pn+ps, "alice") || b1.User != "" {
		t.Fatalf("pseudonyms %q %q, user %q", pn, ps, b1.User)
	}
	if b2.Researchers["north"] != pn || pn != h.Pseudonym("north", "alice") || h.Pseudonym("north", "bob") == pn {
		t.Errorf("pseudonyms are not stable per node and user")
	}
	if len(res.Results) != 2 || res.Results[0].Refused != "budget-day" || res.Results[0].Budget == nil || res.Results[0].Budget.TotalLeft != 4.5 {
		t.Fatalf("results %+v", res.Results)
	}
	alerts := h.Alerts()
	if len(alerts) != 1 || alerts[0].User != "alice" || alerts[0].Node != "north" || alerts[0].Kind != "sweep" {
		t.Fatalf("alerts %+v", alerts)
	}
	if b, _ := readFile(h.cfg.Data + "/audit.log"); !bytes.Contains(b, []byte(`"action":"disclosure-alert"`)) || bytes.Contains(b, []byte("r-someone-else")) {
		t.Errorf("audit log: %s", b)
	}
	req2 := httptest.NewRequest("GET", "/search", nil)
	row := h.uiResult(req2, res, nil).Rows[0]
	if !strings.Contains(row.Refused, "spent for today") || !strings.Contains(row.Budget, "4.5 in all") {
		t.Errorf("page row %+v", row)
	}
}

package access

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

// envelope is one message the test SMTP server accepted.
type envelope struct {
	From    string
	To      []string
	Subject string
	Data    string
}

// mailbox is a real SMTP server (go-smtp) in the test process that
// records every envelope it accepts.
type mailbox struct {
	mu   sync.Mutex
	got  []envelope
	addr string
	srv  *smtp.Server
	// user and password, when set, are required (AUTH PLAIN).
	user, password string
}

type mboxSession struct {
	m      *mailbox
	authed bool
	env    envelope
}

func (s *mboxSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *mboxSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if user != s.m.user || password != s.m.password {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *mboxSession) Reset()        { s.env = envelope{} }
func (s *mboxSession) Logout() error { return nil }
func (s *mboxSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.m.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.env.From = from
	return nil
}
func (s *mboxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.env.To = append(s.env.To, to)
	return nil
}
func (s *mboxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.env.Data = string(b)
	for _, l := range strings.Split(s.env.Data, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Subject: "); ok {
			s.env.Subject = v
			break
		}
	}
	s.m.mu.Lock()
	s.m.got = append(s.m.got, s.env)
	s.m.mu.Unlock()
	return nil
}

// newMailbox starts the SMTP server on a free port of 127.0.0.1.
func newMailbox(t *testing.T, configure func(*smtp.Server)) *mailbox {
	t.Helper()
	m := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &mboxSession{m: m}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if configure != nil {
		configure(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr, m.srv = l.Addr().String(), srv
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return m
}

// to returns the subjects of the mails addressed to addr.
func (m *mailbox) to(addr string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.got {
		if slices.Contains(e.To, addr) {
			out = append(out, e.Subject)
		}
	}
	return out
}

// reset forgets the mails received so far.
func (m *mailbox) reset() {
	m.mu.Lock()
	m.got = nil
	m.mu.Unlock()
}

func (m *mailbox) all() []envelope {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

// directory is a Directory of fixed people (a fake for unit tests; the
// hub's real one is tested in package hub).
type directory struct {
	people map[string]Person
	reps   map[string][]Dataset // user -> datasets ("*" = every dataset of the node)
}

func (d *directory) Person(_ context.Context, id string) (Person, error) {
	p, ok := d.people[id]
	if !ok {
		return Person{}, fmt.Errorf("no user %s", id)
	}
	return p, nil
}

func (d *directory) Represents(_ context.Context, user, node, dataset string) (bool, error) {
	for _, r := range d.reps[user] {
		if r.Node == node && (r.Dataset == dataset || r.Dataset == "*") {
			return true, nil
		}
	}
	return false, nil
}

func (d *directory) Representatives(ctx context.Context, node, dataset string) ([]Person, error) {
	var out []Person
	for id := range d.reps {
		if ok, _ := d.Represents(ctx, id, node, dataset); ok {
			out = append(out, d.people[id])
		}
	}
	slices.SortFunc(out, func(a, b Person) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (d *directory) Admins(context.Context) ([]Person, error) {
	var out []Person
	for _, p := range d.people {
		if p.Role == RoleAdmin {
			out = append(out, p)
		}
	}
	return out, nil
}

// granter answers snapshot tasks as a node would: a digest of a member
// list it keeps to itself.
type granter struct {
	mu    sync.Mutex
	fail  map[string]string // node -> error text to answer with
	down  map[string]bool   // node -> the task fails to reach it
	lie   map[string]bool   // node -> answers for another snapshot
	calls []fed.SnapshotBody
}

func (g *granter) Snapshot(_ context.Context, node string, b fed.SnapshotBody) (fed.SnapshotAnswer, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, b)
	if g.down[node] {
		return fed.SnapshotAnswer{}, errors.New("node not connected")
	}
	if e := g.fail[node]; e != "" {
		// A well-formed answer but for its error: only the error refuses it.
		return fed.SnapshotAnswer{Node: node, Snapshot: b.Snapshot, Dataset: b.Dataset, Digest: strings.Repeat("0", 64), Error: e}, nil
	}
	if g.lie[node] {
		return fed.SnapshotAnswer{Node: node, Snapshot: "snap-other", Dataset: b.Dataset, Digest: strings.Repeat("0", 64)}, nil
	}
	members := "pseudo-1 1.2.3.1\npseudo-2 1.2.3.2\n"
	sum := sha256.Sum256([]byte(members))
	return fed.SnapshotAnswer{Node: node, TaskID: "t", Snapshot: b.Snapshot, Dataset: b.Dataset, Created: time.Now().UTC(),
		Digest: hex.EncodeToString(sum[:]), Subjects: 12, Studies: 15, Floor: 10}, nil
}

// publisher records revocations sent to nodes.
type publisher struct {
	mu  sync.Mutex
	got map[string][]fed.Revocation
}

func (p *publisher) Revoked(_ context.Context, node string, r fed.Revocation) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.got == nil {
		p.got = map[string][]fed.Revocation{}
	}
	p.got[node] = append(p.got[node], r)
	return nil
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a Service over a real database, behind a real HTTP server,
// mailing a real SMTP server.
type world struct {
	svc    *Service
	srv    *httptest.Server
	mail   *mailbox
	dir    *directory
	grant  *granter
	pub    *publisher
	clock  *clock
	pub25  ed25519.PublicKey
	audits []string
	amu    sync.Mutex
}

// The cast: a researcher, a second researcher, an admin, and one
// representative per dataset (repB2 represents every dataset of node-b).
var cast = []Person{
	{ID: "alice", Role: RoleResearcher, Email: "alice@example.org"},
	{ID: "mallory", Role: RoleResearcher, Email: "mallory@example.org"},
	{ID: "root", Role: RoleAdmin, Email: "root@example.org"},
	{ID: "repA", Role: RoleRepresentative, Email: "repa@example.org"},
	{ID: "repB", Role: RoleRepresentative, Email: "repb@example.org"},
	{ID: "repB2", Role: RoleRepresentative, Email: "repb2@example.org"},
	{ID: "repC", Role: RoleRepresentative, Email: "repc@example.org"},
}

var (
	dsA = Dataset{"node-a", "lung"}
	dsB = Dataset{"node-b", "brain"}
	dsC = Dataset{"node-c", "liver"}
)

// engines runs fn on SQLite and on PostgreSQL.
func engines(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "hub.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, sqltest.PostgresURL(t)) })
}

func newWorld(t *testing.T, dsn string, cfg Config) *world {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{
		mail:  newMailbox(t, nil),
		dir:   &directory{people: map[string]Person{}, reps: map[string][]Dataset{"repA": {dsA}, "repB": {dsB}, "repB2": {{"node-b", "*"}}, "repC": {dsC}}},
		grant: &granter{fail: map[string]string{}, down: map[string]bool{}, lie: map[string]bool{}},
		pub:   &publisher{},
		clock: &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
	}
	for _, p := range cast {
		w.dir.people[p.ID] = p
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	w.pub25 = pub
	mailer, err := NewSMTP(w.mail.addr, "hub@example.org", "", "", TLSStartTLS)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DatasetExists == nil {
		cfg.DatasetExists = func(_ context.Context, node, ds string) bool {
			d := Dataset{node, ds}
			return d == dsA || d == dsB || d == dsC
		}
	}
	cfg.HubURL = "https://hub.example.org"
	audit := func(actor, action, subject string, _ map[string]any) error {
		w.amu.Lock()
		w.audits = append(w.audits, actor+" "+action)
		w.amu.Unlock()
		return nil
	}
	w.svc, err = New(db, cfg, w.dir, w.grant, w.pub, mailer, priv, audit, w.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(w.svc.Handler(func(r *http.Request) (Person, bool) {
		id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, known := w.dir.people[id]
		return p, ok && known
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// call makes an API call as user ("" for none) and decodes the answer
// into out (when not nil); it returns the status and the error text.
func (w *world) call(t *testing.T, user, method, path string, body any, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(raw, &e)
		return resp.StatusCode, e.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, ""
}

// must is call that fails the test unless the status is want.
func (w *world) must(t *testing.T, want int, user, method, path string, body any, out any) {
	t.Helper()
	if got, msg := w.call(t, user, method, path, body, out); got != want {
		t.Fatalf("%s %s %s: status %d (%s), want %d", user, method, path, got, msg, want)
	}
}

const testQuery = `{"operand":"AND","children":[{"key":"RID10311","type":"IN","value":["CT","MR"]}]}`

func newInput(datasets ...Dataset) map[string]any {
	return map[string]any{
		"title":       "Lung nodules in CT",
		"description": "Training a detector of lung nodules.",
		"duo":         []string{"DUO:0000006", "DUO:0000046"},
		"query":       json.RawMessage(testQuery),
		"datasets":    datasets,
		"operations":  []string{"view", "download"},
		"days":        90,
	}
}

// negotiating makes a request of alice over datasets and has root
// approve it for negotiation; the mailbox is emptied.
func (w *world) negotiating(t *testing.T, datasets ...Dataset) string {
	t.Helper()
	var r Request
	w.must(t, 201, "alice", "POST", "/api/v1/access-requests", newInput(datasets...), &r)
	w.must(t, 200, "alice", "POST", "/api/v1/access-requests/"+r.ID+"/submit", nil, nil)
	w.must(t, 200, "root", "POST", "/api/v1/access-requests/"+r.ID+"/review", map[string]string{"decision": "approve"}, nil)
	w.mail.reset()
	return r.ID
}

func decisionPath(id string, d Dataset) string {
	return "/api/v1/access-requests/" + id + "/datasets/" + d.Node + "/" + d.Dataset + "/decision"
}

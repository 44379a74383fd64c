package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

// permitEnv is a real node (SQLite or PostgreSQL index, audit log on
// disk) with a link to a hub whose key the test holds, and a clock the
// test moves.
type permitEnv struct {
	t       *testing.T
	n       *Node
	l       *Link
	hubKey  ed25519.PrivateKey
	logPath string
	mu      sync.Mutex
	now     time.Time
}

func newPermitEnv(t *testing.T, db string) *permitEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{Data: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if db == "postgres" {
		cfg.DB = sqltest.PostgresURL(t)
	}
	n, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(ctx) })
	for _, id := range []string{"lung", "brain"} {
		if _, err := n.CreateDataset(ctx, index.Dataset{ID: id, Title: id}); err != nil {
			t.Fatal(err)
		}
	}
	hubPub, hubKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, nodeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := &permitEnv{t: t, n: n, hubKey: hubKey, logPath: filepath.Join(dir, "audit.log"), now: time.Now().UTC().Truncate(time.Second)}
	al, err := audit.Open(e.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	e.l = &Link{n: n, f: Federation{EnrollResponse: fed.EnrollResponse{Node: "north"}}, hubKey: hubPub, key: nodeKey, audit: al, now: e.clock}
	return e
}

func (e *permitEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *permitEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// claims are a good permit for researcher u-7 to view lung at north.
func (e *permitEnv) claims() permit.Claims {
	now := e.clock()
	return permit.Claims{ID: "p-" + fed.NewID()[:12], Researcher: "u-7", Node: "north", Dataset: "lung", Snapshot: "s-1", Request: "r-1",
		Operations: []permit.Op{permit.OpView}, Purpose: "Lung nodules", IssuedAt: now.Unix(),
		NotBefore: now.Add(-time.Minute).Unix(), Expires: now.Add(24 * time.Hour).Unix()}
}

func (e *permitEnv) sign(c permit.Claims) string {
	e.t.Helper()
	tok, err := permit.Sign(e.hubKey, c)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// revoke sends the hub's signed revocation list (maybe empty) through
// the link's task handler, as it comes over NATS.
func (e *permitEnv) revoke(revs ...fed.Revocation) {
	e.t.Helper()
	e.l.onTask(&nats.Msg{Subject: fed.TaskSubject("north"), Data: revokeTask(e.t, e.hubKey, "north", e.clock(), revs...)})
}

func revokeTask(t *testing.T, hubKey ed25519.PrivateKey, node string, now time.Time, revs ...fed.Revocation) []byte {
	t.Helper()
	if revs == nil {
		revs = []fed.Revocation{}
	}
	body, _ := json.Marshal(fed.RevokeBody{Revocations: revs})
	msg, err := fed.Seal(hubKey, fed.SignerHub, fed.Task{ID: fed.NewID(), Kind: fed.TaskRevoke, Issued: now, Expires: now.Add(time.Minute), Audience: node, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

type auditLine struct {
	Actor, Action, Subject string
	Detail                 map[string]any
}

func (e *permitEnv) audit() []auditLine {
	e.t.Helper()
	f, err := os.Open(e.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var out []auditLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var a auditLine
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			e.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, a)
	}
	return out
}

// check runs CheckPermit and asserts its outcome (want "" to allow) and
// the audit record it left.
func (e *permitEnv) check(token, researcher string, op permit.Op, wantStatus int, want string) permit.Claims {
	e.t.Helper()
	before := len(e.audit())
	c, err := e.l.CheckPermit(context.Background(), token, researcher, op)
	var pe *PermitError
	switch {
	case want == "" && err != nil:
		e.t.Fatalf("CheckPermit: %v; want allowed", err)
	case want != "" && !errors.As(err, &pe):
		e.t.Fatalf("CheckPermit: %v; want a PermitError %s", err, want)
	case want != "" && (pe.Reason != want || pe.HTTPStatus() != wantStatus):
		e.t.Fatalf("CheckPermit: %d %s (%v); want %d %s", pe.HTTPStatus(), pe.Reason, err, wantStatus, want)
	}
	recs := e.audit()
	if len(recs) != before+1 {
		e.t.Fatalf("CheckPermit left %d audit records; want 1", len(recs)-before)
	}
	r := recs[len(recs)-1]
	wantAction, wantReason := "permit-use", any(nil)
	if want != "" {
		wantAction, wantReason = "permit-refused", want
	}
	if r.Action != wantAction || r.Detail["reason"] != wantReason || r.Detail["researcher"] != researcher || r.Detail["op"] != string(op) {
		e.t.Fatalf("audit record %+v; want %s with reason %v", r, wantAction, wantReason)
	}
	if c.ID != "" && (r.Subject != c.ID || r.Detail["dataset"] != c.Dataset) {
		e.t.Fatalf("audit record %+v does not name permit %s and its dataset", r, c.ID)
	}
	return c
}

// TestCheckPermit: every negative case of the issue is refused at the
// node with its status and reason, and recorded in the node's audit
// log; the good permit is allowed and recorded too.
func TestCheckPermit(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testCheckPermit(t, "sqlite") })
	t.Run("postgres", func(t *testing.T) { testCheckPermit(t, "postgres") })
}

func testCheckPermit(t *testing.T, db string) {
	e := newPermitEnv(t, db)
	// run runs a subtest whose failures, in e's helpers too, are its own.
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(st *testing.T) {
			old := e.t
			e.t = st
			defer func() { e.t = old }()
			f(st)
		})
	}
	ctx := context.Background()
	e.revoke() // the hub's (empty) list: the node has heard from it
	good := e.claims()
	tok := e.sign(good)
	e.check(tok, "u-7", permit.OpView, 200, "")

	run("forged", func(t *testing.T) {
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		forged, err := permit.Sign(other, e.claims())
		if err != nil {
			t.Fatal(err)
		}
		c := e.check(forged, "u-7", permit.OpView, 401, ReasonInvalid)
		if c.ID != "" {
			t.Errorf("claims of a forged permit returned: %+v", c)
		}
		if r := e.audit(); r[len(r)-1].Subject != "" || r[len(r)-1].Detail["token_sha256"] == nil {
			t.Errorf("a forged permit's record names its claimed id or lacks the token digest: %+v", r[len(r)-1])
		}
	})
	run("tampered", func(t *testing.T) {
		// Give the permit to another researcher by editing its payload.
		p := strings.Split(tok, ".")
		b, _ := jsonB64.DecodeString(p[1])
		p[1] = jsonB64.EncodeToString([]byte(strings.Replace(string(b), `"u-7"`, `"u-8"`, 1)))
		e.check(strings.Join(p, "."), "u-8", permit.OpView, 401, ReasonInvalid)
	})
	run("expired", func(t *testing.T) {
		c := e.claims()
		c.NotBefore, c.Expires = e.clock().Add(-48*time.Hour).Unix(), e.clock().Add(-time.Hour).Unix()
		e.check(e.sign(c), "u-7", permit.OpView, 401, ReasonExpired)
	})
	run("not yet valid", func(t *testing.T) {
		c := e.claims()
		c.NotBefore = e.clock().Add(time.Hour).Unix()
		e.check(e.sign(c), "u-7", permit.OpView, 401, ReasonNotYetValid)
	})
	run("another researcher", func(t *testing.T) {
		e.check(tok, "u-8", permit.OpView, 403, ReasonOtherResearcher)
	})
	run("another node", func(t *testing.T) {
		c := e.claims()
		c.Node = "south"
		e.check(e.sign(c), "u-7", permit.OpView, 403, ReasonOtherNode)
	})
	run("dataset not here", func(t *testing.T) {
		c := e.claims()
		c.Dataset = "prostate"
		e.check(e.sign(c), "u-7", permit.OpView, 403, ReasonNoDataset)
	})
	run("operation not allowed", func(t *testing.T) {
		e.check(tok, "u-7", permit.OpDownload, 403, ReasonOperation)
		e.check(tok, "u-7", permit.OpProcess, 403, ReasonOperation)
		e.check(tok, "u-7", "delete", 403, ReasonOperation)
		c := e.claims()
		c.Operations = []permit.Op{permit.OpDownload}
		e.check(e.sign(c), "u-7", permit.OpView, 200, "") // download includes view
	})
	run("revoked by the hub", func(t *testing.T) {
		c := e.claims()
		tok := e.sign(c)
		e.check(tok, "u-7", permit.OpView, 200, "")
		e.revoke(fed.Revocation{Permit: c.ID, Time: e.clock(), Expires: c.ExpiresAt(), By: "admin"})
		e.check(tok, "u-7", permit.OpView, 403, ReasonRevoked)
		// The list comes again every 15 s: still revoked, recorded once.
		e.revoke(fed.Revocation{Permit: c.ID, Time: e.clock(), Expires: c.ExpiresAt(), By: "admin"})
		e.check(tok, "u-7", permit.OpView, 403, ReasonRevoked)
		n := 0
		for _, r := range e.audit() {
			if r.Action == "permit-revoked" && r.Subject == c.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the revocation is in the audit log %d times; want 1", n)
		}
		// A later list without it does not take it back.
		e.revoke()
		e.check(tok, "u-7", permit.OpView, 403, ReasonRevoked)
	})
	run("revoked locally", func(t *testing.T) {
		c := e.claims()
		tok := e.sign(c)
		e.check(tok, "u-7", permit.OpView, 200, "")
		if err := e.n.RevokePermit(ctx, c.ID, "suspicious use"); err != nil {
			t.Fatal(err)
		}
		e.check(tok, "u-7", permit.OpView, 403, ReasonRevoked)
	})
	run("revocation by another node's list is not taken", func(t *testing.T) {
		c := e.claims()
		tok := e.sign(c)
		e.l.onTask(&nats.Msg{Data: revokeTask(t, e.hubKey, "south", e.clock(), fed.Revocation{Permit: c.ID, Time: e.clock(), By: "admin"})})
		e.check(tok, "u-7", permit.OpView, 200, "")
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		e.l.onTask(&nats.Msg{Data: revokeTask(t, other, "north", e.clock(), fed.Revocation{Permit: c.ID, Time: e.clock(), By: "admin"})})
		e.check(tok, "u-7", permit.OpView, 200, "")
	})
	run("offline longer than the limit", func(t *testing.T) {
		e.advance(DefaultPermitOfflineLimit - time.Second)
		e.check(tok, "u-7", permit.OpView, 200, "")
		e.advance(2 * time.Second)
		e.check(tok, "u-7", permit.OpView, 403, ReasonHubUnheard)
		// A forged list is not hearing from the hub.
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		e.l.onTask(&nats.Msg{Data: revokeTask(t, other, "north", e.clock())})
		e.check(tok, "u-7", permit.OpView, 403, ReasonHubUnheard)
		// An empty list from the hub is.
		e.revoke()
		e.check(tok, "u-7", permit.OpView, 200, "")
	})
	run("local approval", func(t *testing.T) {
		if err := e.n.RequirePermitApproval(ctx, "lung", true); err != nil {
			t.Fatal(err)
		}
		e.check(tok, "u-7", permit.OpView, 403, ReasonApprovalRequired)
		// Approval of an id never seen is refused (and of another
		// permit would not count).
		if err := e.n.ApprovePermit(ctx, "p-other"); !errors.Is(err, index.ErrNotFound) {
			t.Fatalf("approve an id never seen: %v; want ErrNotFound", err)
		}
		e.check(tok, "u-7", permit.OpView, 403, ReasonApprovalRequired)
		// Other datasets are not affected.
		c := e.claims()
		c.Dataset = "brain"
		e.check(e.sign(c), "u-7", permit.OpView, 200, "")
		if err := e.n.ApprovePermit(ctx, good.ID); err != nil {
			t.Fatal(err)
		}
		e.check(tok, "u-7", permit.OpView, 200, "")
		// Approval does not outweigh a revocation.
		if err := e.n.RevokePermit(ctx, good.ID, ""); err != nil {
			t.Fatal(err)
		}
		e.check(tok, "u-7", permit.OpView, 403, ReasonRevoked)
	})

	e.l.flushPermitUses(ctx)
	list, err := e.n.Permits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var g *PermitInfo
	for i := range list {
		if list[i].ID == good.ID {
			g = &list[i]
		}
	}
	if g == nil || g.State != PermitRevoked || g.Researcher != "u-7" || g.Dataset != "lung" || g.Snapshot != "s-1" ||
		g.Uses < 4 || g.Refusals < 6 || g.Approved == nil || g.FirstUsed == nil || g.LastUsed == nil || g.Expires == nil || strings.Join(g.Ops, ",") != "view" {
		t.Errorf("the good permit as listed: %+v", g)
	}
}

var jsonB64 = base64.RawURLEncoding

// TestPermitUseCounts: the first check of a permit and every refusal
// are written at once; further uses at most once a second, and the rest
// when the link closes, so that the counts come out exact.
func TestPermitUseCounts(t *testing.T) {
	e := newPermitEnv(t, "sqlite")
	ctx := context.Background()
	e.revoke()
	c := e.claims()
	tok := e.sign(c)
	seen := func() index.PermitRecord {
		t.Helper()
		recs, err := e.n.ix.Permits(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.ID == c.ID {
				return r
			}
		}
		return index.PermitRecord{}
	}
	first := e.clock()
	for range 5 {
		if _, err := e.l.CheckPermit(ctx, tok, "u-7", permit.OpView); err != nil {
			t.Fatal(err)
		}
	}
	if r := seen(); r.Uses != 1 || r.Researcher != "u-7" || r.FirstUsed == nil || !r.FirstUsed.Equal(first) {
		t.Errorf("after five uses within a second: %+v; want the first written", r)
	}
	e.check(tok, "u-8", permit.OpView, 403, ReasonOtherResearcher)
	if r := seen(); r.Uses != 5 || r.Refusals != 1 {
		t.Errorf("after a refusal: %d uses, %d refusals; want 5 and 1 (a refusal writes what is pending)", r.Uses, r.Refusals)
	}
	e.advance(useEvery)
	if _, err := e.l.CheckPermit(ctx, tok, "u-7", permit.OpView); err != nil {
		t.Fatal(err)
	}
	if r := seen(); r.Uses != 6 || r.LastUsed == nil || !r.LastUsed.Equal(e.clock()) {
		t.Errorf("a use a second later: %+v; want 6 uses, last now", r)
	}
	for range 3 {
		e.l.CheckPermit(ctx, tok, "u-7", permit.OpView)
	}
	e.l.flushPermitUses(ctx)
	if r := seen(); r.Uses != 9 || r.Refusals != 1 {
		t.Errorf("after the flush: %d uses, %d refusals; want 9 and 1", r.Uses, r.Refusals)
	}
}

// TestCheckPermitNeverHeard: a node that has never heard the hub's
// revocation list refuses every permit (fail closed).
func TestCheckPermitNeverHeard(t *testing.T) {
	e := newPermitEnv(t, "sqlite")
	e.check(e.sign(e.claims()), "u-7", permit.OpView, 403, ReasonHubUnheard)
}

// TestCheckPermitUnrecorded: a use that cannot be in the audit log is
// refused (503), as a search answer is not given unrecorded.
func TestCheckPermitUnrecorded(t *testing.T) {
	e := newPermitEnv(t, "sqlite")
	e.revoke()
	tok := e.sign(e.claims())
	if _, err := e.l.CheckPermit(context.Background(), tok, "u-7", permit.OpView); err != nil {
		t.Fatal(err)
	}
	e.l.audit.Close()
	_, err := e.l.CheckPermit(context.Background(), tok, "u-7", permit.OpView)
	var pe *PermitError
	if !errors.As(err, &pe) || pe.HTTPStatus() != http.StatusServiceUnavailable || pe.Reason != ReasonUnavailable {
		t.Fatalf("CheckPermit with an audit log that cannot be written: %v; want 503 %s", err, ReasonUnavailable)
	}
}

// TestRevocationListHandling: expired revocations are dropped, a list's
// time never runs ahead of the node's clock, and malformed lists are
// refused without counting as hearing from the hub.
func TestRevocationListHandling(t *testing.T) {
	e := newPermitEnv(t, "sqlite")
	ctx := context.Background()
	now := e.clock()
	e.revoke(fed.Revocation{Permit: "p-gone", Time: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour), By: "admin"},
		fed.Revocation{Permit: "p-live", Time: now, Expires: now.Add(time.Hour), By: "representative"},
		fed.Revocation{Permit: "bad id with spaces", Time: now, By: "admin"})
	recs, err := e.n.ix.Permits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != "p-live" || recs[0].RevokedBy != "representative" || recs[0].RevokedAt != index.RevokedAtHub {
		t.Fatalf("stored revocations: %+v; want p-live alone", recs)
	}
	for _, r := range e.audit() {
		if r.Action == "permit-revoked" && r.Subject != "p-live" {
			t.Errorf("revocation of %s recorded; want p-live's alone", r.Subject)
		}
	}
	// Once p-live expires, the next list forgets it.
	e.advance(2 * time.Hour)
	e.revoke()
	if recs, _ := e.n.ix.Permits(ctx); len(recs) != 0 {
		t.Errorf("revocation of an expired permit kept: %+v", recs)
	}
	st, err := e.n.ix.PermitStatus(ctx, "x", "lung")
	if err != nil || !st.HubHeard.Equal(e.clock()) {
		t.Fatalf("hub heard at %v (%v); want %v", st.HubHeard, err, e.clock())
	}
	// A list issued (by the hub's clock) ahead of the node's counts as
	// heard now, not later.
	body, _ := json.Marshal(fed.RevokeBody{})
	ahead := e.clock().Add(20 * time.Second)
	msg, _ := fed.Seal(e.hubKey, fed.SignerHub, fed.Task{ID: fed.NewID(), Kind: fed.TaskRevoke, Issued: ahead, Expires: ahead.Add(time.Minute), Audience: "north", Body: body})
	e.l.onTask(&nats.Msg{Data: msg})
	if st, _ := e.n.ix.PermitStatus(ctx, "x", "lung"); !st.HubHeard.Equal(e.clock()) {
		t.Errorf("a list from the future: heard at %v; want %v", st.HubHeard, e.clock())
	}
	// A list issued before the last one heard (late, within the skew)
	// does not move the time back.
	e.advance(10 * time.Second)
	e.l.onTask(&nats.Msg{Data: revokeTask(t, e.hubKey, "north", e.clock())})
	e.l.onTask(&nats.Msg{Data: revokeTask(t, e.hubKey, "north", e.clock().Add(-20*time.Second))})
	if st, _ := e.n.ix.PermitStatus(ctx, "x", "lung"); !st.HubHeard.Equal(e.clock()) {
		t.Errorf("a late list moved the hub's last word back to %v; want %v", st.HubHeard, e.clock())
	}
	// A malformed list is refused and not heard.
	e.advance(time.Minute)
	msg, _ = fed.Seal(e.hubKey, fed.SignerHub, fed.Task{ID: fed.NewID(), Kind: fed.TaskRevoke, Issued: e.clock(), Expires: e.clock().Add(time.Minute), Audience: "north", Body: json.RawMessage(`{"revocations":"all"}`)})
	e.l.onTask(&nats.Msg{Data: msg})
	if st, _ := e.n.ix.PermitStatus(ctx, "x", "lung"); st.HubHeard.Equal(e.clock()) {
		t.Errorf("a malformed list counted as hearing from the hub")
	}
	if r := e.audit(); r[len(r)-1].Action != "task-refused" {
		t.Errorf("a malformed list is not recorded as refused: %+v", r[len(r)-1])
	}
}

// TestRevocationOverNATS: a revocation the hub publishes on the node's
// task subject reaches a node linked over a real NATS server and is in
// force within a second.
func TestRevocationOverNATS(t *testing.T) {
	ctx := context.Background()
	url := startNATS(t)
	dir := t.TempDir()
	n, err := Open(ctx, Config{Data: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "lung", Title: "Lung"}); err != nil {
		t.Fatal(err)
	}
	hubPub, hubKey, _ := ed25519.GenerateKey(rand.Reader)
	f := Federation{EnrollResponse: fed.EnrollResponse{Node: "north", NATSURLs: []string{url}, HubKey: fed.EncodeKey(hubPub)}, Enrolled: time.Now()}
	b, _ := json.Marshal(f)
	if err := os.WriteFile(filepath.Join(dir, "federation.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := n.StartLink(LinkOptions{Heartbeat: time.Hour})
	if err != nil || l == nil {
		t.Fatalf("start link: %v", err)
	}
	defer l.Close()
	hub, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	waitFor(t, l.Connected)

	now := time.Now()
	c := permit.Claims{ID: "p-nats", Researcher: "u-7", Node: "north", Dataset: "lung", Snapshot: "s-1", Operations: []permit.Op{permit.OpView},
		NotBefore: now.Add(-time.Minute).Unix(), Expires: now.Add(time.Hour).Unix()}
	tok, err := permit.Sign(hubKey, c)
	if err != nil {
		t.Fatal(err)
	}
	var pe *PermitError
	if _, err := l.CheckPermit(ctx, tok, "u-7", permit.OpView); !errors.As(err, &pe) || pe.Reason != ReasonHubUnheard {
		t.Fatalf("before any list from the hub: %v; want %s", err, ReasonHubUnheard)
	}
	if err := hub.Publish(fed.TaskSubject("north"), revokeTask(t, hubKey, "north", time.Now())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := l.CheckPermit(ctx, tok, "u-7", permit.OpView); return err == nil })
	sent := time.Now()
	if err := hub.Publish(fed.TaskSubject("north"), revokeTask(t, hubKey, "north", time.Now(), fed.Revocation{Permit: "p-nats", Time: sent, Expires: c.ExpiresAt(), By: "admin"})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := l.CheckPermit(ctx, tok, "u-7", permit.OpView)
		return errors.As(err, &pe) && pe.Reason == ReasonRevoked
	})
	d := time.Since(sent)
	if d > time.Second {
		t.Errorf("the revocation took %v to be in force; want under a second", d)
	}
	t.Logf("revocation in force %v after the hub published it", d)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startNATS runs a NATS server in the test process on a free port.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// TestPermitOfflineLimitSetting: the limit defaults to 5 minutes and a
// negative one is refused.
func TestPermitOfflineLimitSetting(t *testing.T) {
	c := Config{Data: t.TempDir()}
	c.Defaults()
	if c.PermitOfflineLimit != DefaultPermitOfflineLimit || DefaultPermitOfflineLimit != 5*time.Minute {
		t.Errorf("default permit_offline_limit %v", c.PermitOfflineLimit)
	}
	c.PermitOfflineLimit = -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "permit_offline_limit") {
		t.Errorf("negative permit_offline_limit: %v", err)
	}
}

// BenchmarkCheckPermit times one allowed check on SQLite: verification,
// the status query, the use counted and the audit record made durable;
// one at a time, and with 16 checks in flight per CPU (a viewer fetching
// frames), whose writes are grouped.
func BenchmarkCheckPermit(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	n, err := Open(ctx, Config{Data: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(ctx)
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "lung", Title: "Lung"}); err != nil {
		b.Fatal(err)
	}
	hubPub, hubKey, _ := ed25519.GenerateKey(rand.Reader)
	al, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer al.Close()
	l := &Link{n: n, f: Federation{EnrollResponse: fed.EnrollResponse{Node: "north"}}, hubKey: hubPub, audit: al}
	now := time.Now()
	if _, err := n.ix.SaveHubRevocations(ctx, nil, now, now); err != nil {
		b.Fatal(err)
	}
	tok, err := permit.Sign(hubKey, permit.Claims{ID: "p-1", Researcher: "u-7", Node: "north", Dataset: "lung", Snapshot: "s-1",
		Operations: []permit.Op{permit.OpView}, NotBefore: now.Add(-time.Minute).Unix(), Expires: now.Add(time.Hour).Unix()})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.CheckPermit(ctx, tok, "u-7", permit.OpView); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.CheckPermit(ctx, tok, "u-7", permit.OpView); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// TestPermitUsesFlushedOnClose: the uses not written yet are written
// when the link closes.
func TestPermitUsesFlushedOnClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := Open(ctx, Config{Data: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "lung", Title: "Lung"}); err != nil {
		t.Fatal(err)
	}
	hubPub, hubKey, _ := ed25519.GenerateKey(rand.Reader)
	// A hub that is not there: the link retries in the background.
	f := Federation{EnrollResponse: fed.EnrollResponse{Node: "north", NATSURLs: []string{"nats://127.0.0.1:1"}, HubKey: fed.EncodeKey(hubPub)}, Enrolled: time.Now()}
	b, _ := json.Marshal(f)
	if err := os.WriteFile(filepath.Join(dir, "federation.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := n.StartLink(LinkOptions{Heartbeat: time.Hour})
	if err != nil || l == nil {
		t.Fatalf("start link: %v", err)
	}
	l.onTask(&nats.Msg{Data: revokeTask(t, hubKey, "north", time.Now())})
	now := time.Now()
	tok, err := permit.Sign(hubKey, permit.Claims{ID: "p-close", Researcher: "u-7", Node: "north", Dataset: "lung", Snapshot: "s-1",
		Operations: []permit.Op{permit.OpView}, NotBefore: now.Add(-time.Minute).Unix(), Expires: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.CheckPermit(ctx, tok, "u-7", permit.OpView); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	recs, err := n.ix.Permits(ctx)
	if err != nil || len(recs) != 1 || recs[0].Uses != 3 {
		t.Fatalf("after close: %+v %v; want p-close with 3 uses", recs, err)
	}
}

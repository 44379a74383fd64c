package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// What the node records of a permit id (first seen, approval, local
// revocation) is bound to the permit's content: a permit signed later
// under the same id with other claims is refused (permit-conflict).

// TestApprovalBoundToPermitContent (the reviewer's finding): the
// operator approves one permit (u-7, view, lung, for a day). A hub
// holding the signing key then signs a different permit reusing the
// approved id: another researcher, download, a ten-year expiry. The node
// refuses it as a conflict, audits it, and lists the id as a conflict
// with the claims first seen.
func TestApprovalBoundToPermitContent(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) { testApprovalBoundToPermitContent(t, db) })
	}
}

func testApprovalBoundToPermitContent(t *testing.T, db string) {
	e := newPermitEnv(t, db)
	ctx := context.Background()
	e.revoke() // the hub is heard
	if err := e.n.RequirePermitApproval(ctx, "lung", true); err != nil {
		t.Fatal(err)
	}
	approved := e.claims()
	e.check(e.sign(approved), "u-7", permit.OpView, 403, ReasonApprovalRequired)
	if err := e.n.ApprovePermit(ctx, approved.ID); err != nil {
		t.Fatal(err)
	}
	seen := e.check(e.sign(approved), "u-7", permit.OpView, 200, "")

	forged := approved // same jti, new content
	forged.Researcher = "mallory"
	forged.Snapshot = "s-everything"
	forged.Operations = []permit.Op{permit.OpView, permit.OpDownload, permit.OpProcess}
	forged.Expires = e.clock().Add(10 * 365 * 24 * time.Hour).Unix()
	_, err := e.l.CheckPermit(ctx, e.sign(forged), "mallory", permit.OpDownload)
	if err == nil {
		t.Fatal("a permit the operator never saw (other researcher, operations, snapshot, expiry) is honoured because it reuses an approved permit's id")
	}
	got := e.check(e.sign(forged), "mallory", permit.OpDownload, 403, ReasonConflict)
	recs := e.audit()
	if r := recs[len(recs)-1]; r.Detail["content_sha256"] != contentDigest(got) || r.Detail["snapshot"] != "s-everything" {
		t.Errorf("the conflict's audit record %+v does not carry the conflicting claims and their digest", r)
	}
	// The approved permit itself still works.
	e.check(e.sign(approved), "u-7", permit.OpView, 200, "")

	e.l.flushPermitUses(ctx)
	list, err := e.n.Permits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("permits listed: %+v", list)
	}
	p := list[0]
	if p.State != PermitConflict || p.Conflicts != 2 || p.LastConflict == nil || p.Researcher != "u-7" || p.Snapshot != "s-1" ||
		p.Digest != contentDigest(seen) || !p.Expires.Equal(approved.ExpiresAt()) {
		t.Errorf("the id as listed after conflicts: %+v; want state conflict, 2 conflicts, the first claims", p)
	}
}

// TestPermitConflictWithoutApproval: a dataset that needs no approval
// still binds a permit id to the claims first seen under it.
func TestPermitConflictWithoutApproval(t *testing.T) {
	e := newPermitEnv(t, "sqlite")
	e.revoke()
	first := e.claims()
	e.check(e.sign(first), "u-7", permit.OpView, 200, "")
	other := first
	other.Operations = []permit.Op{permit.OpDownload}
	e.check(e.sign(other), "u-7", permit.OpDownload, 403, ReasonConflict)
	// A new link (no memory of bindings) reads the binding from the index.
	e.l = &Link{n: e.n, f: e.l.f, hubKey: e.l.hubKey, key: e.l.key, audit: e.l.audit, now: e.clock}
	e.check(e.sign(other), "u-7", permit.OpDownload, 403, ReasonConflict)
	e.check(e.sign(first), "u-7", permit.OpView, 200, "")
}

// TestLocalRevocationOutlivesReSigning: a locally revoked permit's id
// stays refused for other content after the revoked content expired and
// its revocation was forgotten.
func TestLocalRevocationOutlivesReSigning(t *testing.T) {
	e := newPermitEnv(t, "sqlite")
	ctx := context.Background()
	e.revoke()
	c := e.claims()
	e.check(e.sign(c), "u-7", permit.OpView, 200, "")
	if err := e.n.RevokePermit(ctx, c.ID, "suspicious use"); err != nil {
		t.Fatal(err)
	}
	later := c
	later.Expires = e.clock().Add(48 * time.Hour).Unix()
	e.check(e.sign(later), "u-7", permit.OpView, 403, ReasonConflict)
	e.check(e.sign(c), "u-7", permit.OpView, 403, ReasonRevoked)
	e.advance(25 * time.Hour)
	e.revoke() // the hub's list forgets revocations of expired permits
	later.NotBefore = e.clock().Add(-time.Minute).Unix()
	e.check(e.sign(later), "u-7", permit.OpView, 403, ReasonConflict)
}

// TestApprovePermitContent: approval without a token needs the id seen;
// with the permit's token it is approved ahead, for that content only;
// a token that is not this hub's permit for this node, or whose claims
// differ from those seen, is refused; an approval naming other content
// than the permit checked does not count.
func TestApprovePermitContent(t *testing.T) {
	e := newPermitEnv(t, "sqlite")
	ctx := context.Background()
	e.revoke()
	if err := e.n.RequirePermitApproval(ctx, "lung", true); err != nil {
		t.Fatal(err)
	}
	c := e.claims()
	tok := e.sign(c)
	if err := e.n.ApprovePermit(ctx, c.ID); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("approve an id never seen: %v; want ErrNotFound", err)
	}
	// Known only by a revocation ahead: no content to approve either.
	if err := e.n.RevokePermit(ctx, "p-revoked-ahead", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.n.ApprovePermit(ctx, "p-revoked-ahead"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("approve an id known by a revocation alone: %v; want ErrNotFound", err)
	}
	if _, err := e.n.ApprovePermitContent(ctx, c.ID, tok); !errors.Is(err, index.ErrInvalid) {
		t.Fatalf("approve with a token on a node not enrolled: %v; want ErrInvalid", err)
	}
	f := Federation{EnrollResponse: fed.EnrollResponse{Node: "north", HubKey: fed.EncodeKey(e.l.hubKey)}}
	b, _ := json.Marshal(f)
	if err := os.WriteFile(e.n.federationPath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	south := c
	south.Node = "south"
	forged, _ := e.hubKey.Sign(nil, []byte("x"), &ed25519.Options{}) // not a token at all
	for name, bad := range map[string][2]string{
		"another id":    {"p-other", tok},
		"another node":  {c.ID, e.sign(south)},
		"not a permit":  {c.ID, string(forged[:10])},
		"another hub":   {c.ID, signWith(t, c)},
		"expired token": {c.ID, e.sign(expired(c, e.clock()))},
	} {
		if _, err := e.n.ApprovePermitContent(ctx, bad[0], bad[1]); !errors.Is(err, index.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
	p, err := e.n.ApprovePermitContent(ctx, c.ID, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.check(tok, "u-7", permit.OpView, 200, ""); p.Approved == nil || p.Researcher != "u-7" || p.Dataset != "lung" || p.Snapshot != "s-1" || p.Digest != contentDigest(got) {
		t.Errorf("approved ahead: %+v", p)
	}
	other := c
	other.Operations = []permit.Op{permit.OpDownload}
	if _, err := e.n.ApprovePermitContent(ctx, c.ID, e.sign(other)); !errors.Is(err, ErrConflict) {
		t.Errorf("approve other content under an approved id: %v; want ErrConflict", err)
	}
	e.check(e.sign(other), "u-7", permit.OpDownload, 403, ReasonConflict)

	// An approval in the index naming other content than the permit
	// checked is a conflict, not an approval.
	d := e.claims()
	e.check(e.sign(d), "u-7", permit.OpView, 403, ReasonApprovalRequired)
	if err := e.n.ix.ApprovePermit(ctx, d.ID, contentDigest(other), e.clock()); err != nil {
		t.Fatal(err)
	}
	e.check(e.sign(d), "u-7", permit.OpView, 403, ReasonConflict)
}

func expired(c permit.Claims, now time.Time) permit.Claims {
	c.NotBefore, c.Expires = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	return c
}

func signWith(t *testing.T, c permit.Claims) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := permit.Sign(k, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

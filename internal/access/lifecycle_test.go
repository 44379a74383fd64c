package access

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// TestLifecycle walks a request over three datasets with three outcomes
// through the JSON API: A approved at once, B with conditions the
// researcher accepts and then approved, C unavailable. It checks states,
// the snapshot, the permits and who got which mail (and who did not).
func TestLifecycle(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn, Config{})
		mb := w.mail

		var r Request
		w.must(t, 201, "alice", "POST", "/api/v1/access-requests", newInput(dsA, dsB, dsC), &r)
		if r.State != StateDraft || len(r.Datasets) != 3 || r.Datasets[0].State != DSSubmitted {
			t.Fatalf("new request: %+v", r)
		}
		if len(mb.all()) != 0 {
			t.Fatalf("a draft sent mail: %+v", mb.all())
		}
		base := "/api/v1/access-requests/" + r.ID

		// Submitted: the admins are told, and nobody else.
		w.must(t, 200, "alice", "POST", base+"/submit", nil, &r)
		if r.State != StateSubmitted {
			t.Fatalf("state %s after submit", r.State)
		}
		if got := mb.to("root@example.org"); len(got) != 1 || !strings.Contains(got[0], "review") {
			t.Errorf("admin mails after submit: %q", got)
		}
		if n := len(mb.all()); n != 1 {
			t.Errorf("%d mails after submit, want 1 (the admin): %+v", n, mb.all())
		}
		mb.reset()

		// Returned for changes, edited, submitted again.
		w.must(t, 200, "root", "POST", base+"/review", map[string]string{"decision": "return", "message": "Say which nodules."}, &r)
		if r.State != StateReturned {
			t.Fatalf("state %s after return", r.State)
		}
		if got := mb.to("alice@example.org"); len(got) != 1 || !strings.Contains(got[0], "returned") {
			t.Errorf("researcher mails after return: %q", got)
		}
		in := newInput(dsA, dsB, dsC)
		in["description"] = "Training a detector of solid lung nodules over 4 mm."
		w.must(t, 200, "alice", "PATCH", base, in, &r)
		if !strings.Contains(r.Description, "solid") {
			t.Fatalf("edit not kept: %q", r.Description)
		}
		w.must(t, 200, "alice", "POST", base+"/submit", nil, nil)
		mb.reset()

		// Approved for negotiation: each representative hears of their own
		// dataset only; the researcher is told.
		w.must(t, 200, "root", "POST", base+"/review", map[string]string{"decision": "approve"}, &r)
		if r.State != StateNegotiating {
			t.Fatalf("state %s after approve", r.State)
		}
		for _, d := range r.Datasets {
			if d.State != DSContacted {
				t.Errorf("%s/%s is %s, want %s", d.Node, d.Dataset, d.State, DSContacted)
			}
		}
		for addr, want := range map[string]string{"repa@example.org": "node-a/lung", "repb@example.org": "node-b/brain",
			"repb2@example.org": "node-b/brain", "repc@example.org": "node-c/liver"} {
			got := mb.to(addr)
			if len(got) != 1 || !strings.Contains(got[0], want) {
				t.Errorf("%s got %q, want one mail about %s", addr, got, want)
			}
		}
		if got := mb.to("alice@example.org"); len(got) != 1 {
			t.Errorf("researcher got %q after approval, want one mail", got)
		}
		if got := mb.to("mallory@example.org"); len(got) != 0 {
			t.Errorf("an uninvolved researcher got %q", got)
		}
		for _, e := range mb.all() {
			if len(e.To) != 1 {
				t.Errorf("a mail went to several parties at once: %v", e.To)
			}
		}
		mb.reset()

		// A: approved at once. The decision mails the researcher and A's
		// representatives other than the decider, nobody of B or C.
		w.must(t, 200, "repA", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "approve"}, &r)
		if got := mb.to("alice@example.org"); len(got) != 1 || !strings.Contains(got[0], DSGranted) {
			t.Errorf("researcher after A's approval: %q", got)
		}
		for _, addr := range []string{"repa@example.org", "repb@example.org", "repb2@example.org", "repc@example.org", "root@example.org", "mallory@example.org"} {
			if got := mb.to(addr); len(got) != 0 {
				t.Errorf("%s got %q after A's approval", addr, got)
			}
		}
		mb.reset()

		// B: conditions, accepted, then approved.
		w.must(t, 200, "repB", "POST", decisionPath(r.ID, dsB), map[string]string{"decision": "conditions", "message": "Cite the consortium."}, nil)
		if got := mb.to("repb2@example.org"); len(got) != 1 {
			t.Errorf("the other representative of B got %q, want one mail", got)
		}
		if got := mb.to("repb@example.org"); len(got) != 0 {
			t.Errorf("the deciding representative was mailed their own decision: %q", got)
		}
		mb.reset()
		w.must(t, 200, "alice", "POST", "/api/v1/access-requests/"+r.ID+"/datasets/node-b/brain/accept-conditions", nil, &r)
		if d, _ := datasetOf(&r, "node-b", "brain"); d.State != DSConditionsMet {
			t.Fatalf("B is %s after acceptance", d.State)
		}
		if got := mb.to("repb@example.org"); len(got) != 1 {
			t.Errorf("B's representative after acceptance: %q", got)
		}
		if got := mb.to("repa@example.org"); len(got) != 0 {
			t.Errorf("A's representative heard of B's conditions: %q", got)
		}
		w.must(t, 200, "repB2", "POST", decisionPath(r.ID, dsB), map[string]string{"decision": "approve"}, nil)

		// C: checking, then unavailable: the request closes.
		w.must(t, 200, "repC", "POST", decisionPath(r.ID, dsC), map[string]string{"decision": "checking"}, nil)
		w.must(t, 200, "repC", "POST", decisionPath(r.ID, dsC), map[string]string{"decision": "unavailable", "message": "Withdrawn."}, nil)

		w.must(t, 200, "alice", "GET", base, nil, &r)
		if r.State != StateClosed {
			t.Errorf("request is %s, want closed", r.State)
		}
		want := map[string]string{"node-a/lung": DSGranted, "node-b/brain": DSGranted, "node-c/liver": DSUnavailable}
		for _, d := range r.Datasets {
			if d.State != want[d.Node+"/"+d.Dataset] {
				t.Errorf("%s/%s is %s, want %s", d.Node, d.Dataset, d.State, want[d.Node+"/"+d.Dataset])
			}
		}
		if r.Snapshot == "" || len(r.Permits) != 2 {
			t.Fatalf("snapshot %q, %d permits", r.Snapshot, len(r.Permits))
		}

		// One snapshot id for every node of the request.
		for _, c := range w.grant.calls {
			if c.Snapshot != r.Snapshot || c.Request != r.ID || string(c.Query) == "" {
				t.Errorf("snapshot task %+v, want snapshot %s of request %s", c, r.Snapshot, r.ID)
			}
		}

		// The permits verify with the hub's key and say what was granted.
		for _, p := range r.Permits {
			c, err := permit.Verify(w.pub25, p.Token, w.clock.now(), time.Minute)
			if err != nil {
				t.Fatalf("permit %s: %v", p.ID, err)
			}
			if c.ID != p.ID || c.Researcher != "alice" || c.Node != p.Node || c.Dataset != p.Dataset || c.Snapshot != r.Snapshot ||
				c.Request != r.ID || c.Purpose != r.Title || !slices.Equal(c.Operations, []permit.Op{permit.OpView, permit.OpDownload}) {
				t.Errorf("claims %+v of permit %+v", c, p)
			}
			if got := c.ExpiresAt().Sub(c.NotBeforeTime()); got != 90*24*time.Hour {
				t.Errorf("permit window %v, want 90 days", got)
			}
			if !c.NotBeforeTime().Equal(w.clock.now().Truncate(time.Second)) {
				t.Errorf("nbf %v, want now %v", c.NotBeforeTime(), w.clock.now())
			}
			rec, err := w.svc.Permit(context.Background(), p.ID, "alice")
			if err != nil || rec.Token != p.Token || rec.Snapshot != r.Snapshot {
				t.Errorf("Permit(%s): %+v, %v", p.ID, rec, err)
			}
			if _, err := w.svc.Permit(context.Background(), p.ID, "mallory"); err == nil {
				t.Errorf("another researcher got permit %s", p.ID)
			}
		}

		// The snapshot's public page: digests and floored counts of the
		// granted datasets, never a member list.
		var raw map[string]any
		w.must(t, 200, "", "GET", "/api/v1/snapshots/"+r.Snapshot, nil, &raw)
		var snap SnapshotRecord
		b, _ := json.Marshal(raw)
		json.Unmarshal(b, &snap)
		if len(snap.Datasets) != 2 || snap.QueryDescription == "" || snap.Title != r.Title {
			t.Fatalf("snapshot %+v", snap)
		}
		for _, p := range snap.Datasets {
			if len(p.Digest) != 64 || p.Subjects != 12 || p.Studies != 15 || p.Floor != 10 {
				t.Errorf("snapshot part %+v", p)
			}
		}
		if s := string(b); strings.Contains(s, "pseudo-") || strings.Contains(s, "1.2.3.1") || strings.Contains(s, "member") {
			t.Errorf("the snapshot page shows members: %s", s)
		}
		w.must(t, 404, "", "GET", "/api/v1/snapshots/snap-nothing", nil, nil)
	})
}

// TestSnapshotFailure: a node that makes no snapshot leaves the dataset
// in its state, with the error shown, and no permit.
func TestSnapshotFailure(t *testing.T) {
	w := newWorld(t, t.TempDir()+"/hub.db", Config{})
	id := w.negotiating(t, dsA)
	for _, c := range []struct {
		down, lie bool
		fail      string
	}{{down: true}, {fail: "no such dataset"}, {lie: true}} {
		w.grant.down["node-a"], w.grant.fail["node-a"], w.grant.lie["node-a"] = c.down, c.fail, c.lie
		code, msg := w.call(t, "repA", "POST", decisionPath(id, dsA), map[string]string{"decision": "approve"}, nil)
		if code != 502 || !strings.Contains(msg, "node-a") {
			t.Fatalf("failed snapshot: %d %q, want 502 naming the node", code, msg)
		}
		var r Request
		w.must(t, 200, "alice", "GET", "/api/v1/access-requests/"+id, nil, &r)
		if r.Datasets[0].State != DSContacted || r.Datasets[0].Error == "" || len(r.Permits) != 0 {
			t.Fatalf("after a failed snapshot: %+v, permits %+v", r.Datasets[0], r.Permits)
		}
	}
	w.grant.down["node-a"], w.grant.fail["node-a"], w.grant.lie["node-a"] = false, "", false
	var r Request
	w.must(t, 200, "repA", "POST", decisionPath(id, dsA), map[string]string{"decision": "approve"}, &r)
	if r.Datasets[0].State != DSGranted || r.Datasets[0].Error != "" || len(r.Permits) != 1 {
		t.Fatalf("after a good snapshot: %+v, permits %d", r.Datasets[0], len(r.Permits))
	}
}

// TestRevocation: each party allowed to revoke can; the node is told at
// once; RevocationsFor lists the node's unexpired revocations only.
func TestRevocation(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn, Config{})
		ctx := context.Background()
		id := w.negotiating(t, dsA, dsB, dsC)
		for _, d := range []struct {
			user string
			ds   Dataset
		}{{"repA", dsA}, {"repB", dsB}, {"repC", dsC}} {
			w.must(t, 200, d.user, "POST", decisionPath(id, d.ds), map[string]string{"decision": "approve"}, nil)
		}
		var r Request
		w.must(t, 200, "alice", "GET", "/api/v1/access-requests/"+id, nil, &r)
		perm := map[string]PermitView{}
		for _, p := range r.Permits {
			perm[p.Node] = p
		}
		w.mail.reset()

		// Not a party: told the permit does not exist.
		for _, u := range []string{"mallory", "repB", "repC"} {
			w.must(t, 404, u, "POST", "/api/v1/permits/"+perm["node-a"].ID+"/revoke", nil, nil)
		}
		w.must(t, 401, "", "POST", "/api/v1/permits/"+perm["node-a"].ID+"/revoke", nil, nil)
		if len(w.pub.got) != 0 {
			t.Fatalf("refused revocations reached nodes: %+v", w.pub.got)
		}

		// The representative, the admin and the researcher.
		w.must(t, 200, "repA", "POST", "/api/v1/permits/"+perm["node-a"].ID+"/revoke", nil, nil)
		w.must(t, 200, "root", "POST", "/api/v1/permits/"+perm["node-b"].ID+"/revoke", "{}", nil)
		w.must(t, 200, "alice", "POST", "/api/v1/permits/"+perm["node-c"].ID+"/revoke", nil, nil)
		w.must(t, 409, "alice", "POST", "/api/v1/permits/"+perm["node-c"].ID+"/revoke", nil, nil)

		for node, by := range map[string]string{"node-a": RoleRepresentative, "node-b": RoleAdmin, "node-c": RoleResearcher} {
			got := w.pub.got[node]
			if len(got) != 1 || got[0].Permit != perm[node].ID || got[0].By != by || !got[0].Expires.Equal(perm[node].Expires) {
				t.Errorf("node %s was told %+v, want permit %s by %s", node, got, perm[node].ID, by)
			}
			revs, err := w.svc.RevocationsFor(ctx, node)
			if err != nil || len(revs) != 1 || revs[0].Permit != perm[node].ID {
				t.Errorf("RevocationsFor(%s) = %+v, %v", node, revs, err)
			}
		}
		if revs, _ := w.svc.RevocationsFor(ctx, "node-z"); len(revs) != 0 {
			t.Errorf("RevocationsFor(node-z) = %+v", revs)
		}
		w.must(t, 200, "alice", "GET", "/api/v1/access-requests/"+id, nil, &r)
		for _, d := range r.Datasets {
			if d.State != DSRevoked {
				t.Errorf("%s is %s after revocation", d.Node, d.State)
			}
		}
		for _, p := range r.Permits {
			if p.RevokedAt == nil {
				t.Errorf("permit %s shows no revocation", p.ID)
			}
		}
		// The researcher and A's representatives heard of A's revocation;
		// C's representative did not.
		if got := w.mail.to("alice@example.org"); len(got) != 2 {
			t.Errorf("researcher got %q, want the two revocations by others", got)
		}
		if got := w.mail.to("repc@example.org"); len(got) != 1 {
			t.Errorf("C's representative got %q, want one mail (C's revocation)", got)
		}
		if got := w.mail.to("repa@example.org"); len(got) != 0 {
			t.Errorf("A's representative, who revoked, got %q", got)
		}

		// Expired permits drop out of the list.
		w.clock.add(91 * 24 * time.Hour)
		if revs, _ := w.svc.RevocationsFor(ctx, "node-a"); len(revs) != 0 {
			t.Errorf("expired revocations still listed: %+v", revs)
		}
	})
}

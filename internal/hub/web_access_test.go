package hub_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/access"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
)

type uiGranter struct{}

func (uiGranter) Snapshot(_ context.Context, node string, b fed.SnapshotBody) (fed.SnapshotAnswer, error) {
	return fed.SnapshotAnswer{Node: node, Snapshot: b.Snapshot, Dataset: b.Dataset, Created: time.Now(),
		Digest: hex.EncodeToString(make([]byte, 32)), Subjects: 20, Studies: 20, Floor: 10}, nil
}

type uiPublisher struct{}

func (uiPublisher) Revoked(context.Context, string, fed.Revocation) error { return nil }

// TestUIAccess walks a request through the web pages: the researcher
// writes and submits it, the admin approves it, the representative
// decides and writes in the dataset's thread; other users see nothing
// and forms from other sites are refused.
func TestUIAccess(t *testing.T) {
	h, srv := uiTestHub(t, hub.Config{})
	ctx := context.Background()
	for _, u := range []struct{ id, role string }{{"nadia", hub.RoleRepresentative}, {"omar", hub.RoleResearcher}} {
		if err := h.AddUser(ctx, u.id, "a long enough password", u.role); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.AddRepresentative(ctx, "nadia", hub.Representation{Node: "north", Dataset: "lung-ct"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.EnableAccess(access.Config{}, uiGranter{}, uiPublisher{}, nil); err != nil {
		t.Fatal(err)
	}
	rosa := uiLogin(t, srv, uiResearcher, uiResearcherPW)
	ada := uiLogin(t, srv, uiAdmin, uiAdminPW)
	nadia := uiLogin(t, srv, "nadia", "a long enough password")
	omar := uiLogin(t, srv, "omar", "a long enough password")

	if r := uiGet(t, srv.URL+"/access", ""); r.StatusCode != http.StatusSeeOther {
		t.Errorf("access page without login: %d, want a redirect to the login", r.StatusCode)
	}
	uiWant(t, uiGet(t, srv.URL+"/access/new?dataset=north/lung-ct", rosa), 200, "north/lung-ct", "DUO:0000006")
	form := url.Values{"title": {`Nodules <b>bold</b>`}, "description": {"Detector training."}, "duo": {"DUO:0000006"},
		"datasets": {"north/lung-ct\n"}, "query": {`{"operand":"AND","children":[]}`}, "operation": {"view"}, "days": {"30"}, "submit": {"1"}}

	// A form from another site is refused and stores nothing.
	hd := map[string]string{"Sec-Fetch-Site": "cross-site", "Cookie": "mosaic_session=" + rosa}
	uiWant(t, uiDo(t, "POST", srv.URL+"/access/new", form, hd), 403, "Request refused")
	uiWant(t, uiGet(t, srv.URL+"/access", rosa), 200, "None.")

	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("datasets", "north/heart")
	uiWant(t, uiPost(t, srv.URL+"/access/new", bad, rosa), 400, "catalogue")

	r := uiPost(t, srv.URL+"/access/new", form, rosa)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", r.StatusCode, r.body)
	}
	page := r.Header.Get("Location")
	id := regexp.MustCompile(`^/access/(ar-[0-9a-f]+)$`).FindStringSubmatch(page)
	if id == nil {
		t.Fatalf("redirected to %q", page)
	}
	uiWant(t, uiGet(t, srv.URL+page, rosa), 200, "submitted", "Nodules &lt;b&gt;bold&lt;/b&gt;")
	uiWant(t, uiGet(t, srv.URL+page, omar), 404)
	uiWant(t, uiGet(t, srv.URL+page, nadia), 404) // not before the review

	uiWant(t, uiGet(t, srv.URL+"/access", ada), 200, "To review", id[1])
	uiWant(t, uiPost(t, srv.URL+page+"/review", url.Values{"decision": {"approve"}}, rosa), 403)
	if r := uiPost(t, srv.URL+page+"/review", url.Values{"decision": {"approve"}}, ada); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("review: %d\n%s", r.StatusCode, r.body)
	}

	uiWant(t, uiGet(t, srv.URL+"/access", nadia), 200, "For your datasets", id[1])
	uiWant(t, uiGet(t, srv.URL+page, nadia), 200, `action="/access/`+id[1]+`/decide"`, "representative contacted")
	uiWant(t, uiPost(t, srv.URL+page+"/decide", url.Values{"dataset": {"north/lung-ct"}, "decision": {"approve"}}, rosa), 403)
	if r := uiPost(t, srv.URL+page+"/message", url.Values{"thread": {"north/lung-ct"}, "body": {"Which nodule sizes?"}}, nadia); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("message: %d\n%s", r.StatusCode, r.body)
	}
	uiWant(t, uiPost(t, srv.URL+page+"/message", url.Values{"thread": {""}, "body": {"general"}}, nadia), 403)
	if r := uiPost(t, srv.URL+page+"/decide", url.Values{"dataset": {"north/lung-ct"}, "decision": {"approve"}}, nadia); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("decide: %d\n%s", r.StatusCode, r.body)
	}
	uiWant(t, uiPost(t, srv.URL+page+"/decide", url.Values{"dataset": {"north/lung-ct"}, "decision": {"approve"}}, nadia), 409, "made available")

	rp := uiGet(t, srv.URL+page, rosa)
	uiWant(t, rp, 200, "made available", "Which nodule sizes?", "permits-table", "/dicom-web/permits/")
	uiWant(t, uiGet(t, srv.URL+"/access", rosa), 200, "Unread notifications")
	uiWantNot(t, uiGet(t, srv.URL+page, nadia), "/dicom-web/permits/")
}

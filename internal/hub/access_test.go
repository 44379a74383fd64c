package hub

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/access"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

type stubGranter struct{}

func (stubGranter) Snapshot(_ context.Context, node string, b fed.SnapshotBody) (fed.SnapshotAnswer, error) {
	return fed.SnapshotAnswer{Node: node, Snapshot: b.Snapshot, Dataset: b.Dataset, Created: time.Now(),
		Digest: hex.EncodeToString(make([]byte, 32)), Subjects: 11, Studies: 11, Floor: 10}, nil
}

type stubPublisher struct {
	mu  sync.Mutex
	got []fed.Revocation
}

func (p *stubPublisher) Revoked(_ context.Context, _ string, r fed.Revocation) error {
	p.mu.Lock()
	p.got = append(p.got, r)
	p.mu.Unlock()
	return nil
}

// TestAccessOnHub: the access API on a real hub: its users and
// representations decide who may do what, its catalogue which datasets
// exist, its key signs the permits, and only bearer tokens are accepted.
func TestAccessOnHub(t *testing.T) {
	h, srv, adminTok := testHub(t)
	ctx := context.Background()
	tokens := map[string]string{"alice": adminTok}
	for _, u := range []struct{ id, role string }{{"bob", RoleResearcher}, {"carol", RoleRepresentative}, {"dave", RoleRepresentative}} {
		if err := h.AddUser(ctx, u.id, "long enough password", u.role); err != nil {
			t.Fatal(err)
		}
		tok, err := h.NewUserToken(ctx, u.id, "test")
		if err != nil {
			t.Fatal(err)
		}
		tokens[u.id] = tok
	}
	for _, n := range []string{"north", "south"} {
		if _, err := h.AddNode(ctx, n, n, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.PutCatalogue(ctx, fed.Catalogue{Node: n, Datasets: []fed.DatasetSummary{{ID: "lung", Title: "Lung", Licence: "CC-BY-4.0", Tier: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.AddRepresentative(ctx, "carol", Representation{Node: "north", Dataset: "lung"}); err != nil {
		t.Fatal(err)
	}
	if err := h.AddRepresentative(ctx, "dave", Representation{Node: "south", Dataset: AnyDataset}); err != nil {
		t.Fatal(err)
	}

	call := func(user, method, path string, body any, out any) int {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		if user != "" {
			req.Header.Set("Authorization", "Bearer "+tokens[user])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil && resp.StatusCode < 300 {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	in := map[string]any{"title": "Nodules", "description": "Detector training.", "duo": []string{"DUO:0000042"},
		"query": json.RawMessage(`{"operand":"AND","children":[]}`), "operations": []string{"view"}, "days": 30,
		"datasets": []map[string]string{{"node": "north", "dataset": "lung"}, {"node": "south", "dataset": "lung"}}}

	// Open enables access requests with the hub itself reaching the
	// nodes; the test replaces its granter and publisher with stubs.
	pub := &stubPublisher{}
	svc, err := h.EnableAccess(access.Config{RemindAfter: time.Millisecond}, stubGranter{}, pub, nil)
	if err != nil {
		t.Fatal(err)
	}

	bad := map[string]any{}
	for k, v := range in {
		bad[k] = v
	}
	bad["datasets"] = []map[string]string{{"node": "north", "dataset": "brain"}}
	if got := call("bob", "POST", "/api/v1/access-requests", bad, nil); got != http.StatusBadRequest {
		t.Errorf("a dataset not in the catalogue: %d, want 400", got)
	}
	var r access.Request
	if got := call("bob", "POST", "/api/v1/access-requests", in, &r); got != http.StatusCreated {
		t.Fatalf("create: %d", got)
	}
	base := "/api/v1/access-requests/" + r.ID
	if got := call("bob", "POST", base+"/submit", nil, nil); got != 200 {
		t.Fatalf("submit: %d", got)
	}
	if got := call("bob", "POST", base+"/review", map[string]string{"decision": "approve"}, nil); got != http.StatusForbidden {
		t.Errorf("a researcher reviews: %d, want 403", got)
	}
	if got := call("alice", "POST", base+"/review", map[string]string{"decision": "approve"}, nil); got != 200 {
		t.Fatalf("review: %d", got)
	}
	north := base + "/datasets/north/lung/decision"
	if got := call("dave", "POST", north, map[string]string{"decision": "approve"}, nil); got != http.StatusForbidden {
		t.Errorf("the representative of south decides for north: %d, want 403", got)
	}
	if got := call("carol", "POST", north, map[string]string{"decision": "approve"}, nil); got != 200 {
		t.Fatalf("carol approves: %d", got)
	}
	if got := call("bob", "GET", base, nil, &r); got != 200 || len(r.Permits) != 1 {
		t.Fatalf("get: %d, permits %+v", got, r.Permits)
	}
	c, err := permit.Verify(h.PublicKey(), r.Permits[0].Token, time.Now(), time.Minute)
	if err != nil || c.Researcher != "bob" || c.Node != "north" {
		t.Fatalf("permit: %+v, %v", c, err)
	}
	if got := call("", "GET", "/api/v1/snapshots/"+r.Snapshot, nil, nil); got != 200 {
		t.Errorf("public snapshot: %d", got)
	}

	// The hub's hooks are wired to the service: the relay route finds
	// bob's permit (and hands on its token), carol has none of that id,
	// and the snapshot's landing page shows its dataset.
	fwd := &recordingForwarder{}
	h.SetForwarder(fwd)
	relay := "/dicom-web/permits/" + r.Permits[0].ID + "/studies"
	if got := call("bob", "GET", relay, nil, nil); got != 200 {
		t.Errorf("relay under bob's permit: %d", got)
	}
	if got := fwd.calls(); len(got) != 1 || got[0].Permit != r.Permits[0].Token || got[0].Researcher != "bob" {
		t.Errorf("forwarded %+v", got)
	}
	if got := call("carol", "GET", relay, nil, nil); got != http.StatusNotFound {
		t.Errorf("relay under another's permit: %d, want 404", got)
	}
	if page := uiGetPlain(t, srv.URL+"/snapshots/"+r.Snapshot); page.code != 200 || !strings.Contains(page.body, "north/lung") ||
		!strings.Contains(page.body, hex.EncodeToString(make([]byte, 32))) || !strings.Contains(page.body, "Nodules") {
		t.Errorf("snapshot page: %d", page.code)
	}
	if revs, err := h.acc.revocations(ctx, "north"); err != nil || len(revs) != 0 {
		t.Errorf("revocations before any: %v, %v", revs, err)
	}

	// A session cookie is not a bearer token.
	req, _ := http.NewRequest("GET", srv.URL+base, nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: tokens["bob"]})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cookie on the API: %d, want 401", resp.StatusCode)
	}

	// Revocation by carol reaches the publisher.
	if got := call("carol", "POST", "/api/v1/permits/"+r.Permits[0].ID+"/revoke", nil, nil); got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	if len(pub.got) != 1 || pub.got[0].Permit != r.Permits[0].ID || pub.got[0].By != "representative" {
		t.Errorf("published %+v", pub.got)
	}
	if got := call("bob", "GET", relay, nil, nil); got != http.StatusForbidden {
		t.Errorf("relay under a revoked permit: %d, want 403", got)
	}
	if revs, err := h.acc.revocations(ctx, "north"); err != nil || len(revs) != 1 || revs[0].Permit != r.Permits[0].ID {
		t.Errorf("revocations sent to north: %+v, %v", revs, err)
	}

	// The reminders loop reminds dave, whose dataset waits on him.
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.runAccessReminders(rctx, 10*time.Millisecond) }()
	waitUntil(t, 5*time.Second, func() bool {
		ns, _ := svc.Notifications(ctx, "dave", true)
		for _, n := range ns {
			if strings.HasPrefix(n.Subject, "Reminder") {
				return true
			}
		}
		return false
	})
	stop()
	if err := <-done; err != nil {
		t.Errorf("RunAccessReminders: %v", err)
	}

	// Every change is in the hub's audit log.
	log, err := readFile(h.cfg.Data + "/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"access.create", "access.submit", "access.review", "access.decide", "access.revoke"} {
		if !strings.Contains(string(log), a) {
			t.Errorf("audit log lacks %s", a)
		}
	}
}

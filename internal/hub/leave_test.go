package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/node"
)

// searchAll runs a search for every patient through the hub's API and
// returns the node's status and how long the search took.
func searchAll(t *testing.T, url, tok, nodeID string) (string, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res hub.SearchResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("search: %d %v", resp.StatusCode, err)
	}
	took := time.Since(t0)
	for _, n := range res.Nodes {
		if n.Node == nodeID {
			return n.Status, took
		}
	}
	t.Fatalf("search: node %s missing from %+v", nodeID, res.Nodes)
	return "", 0
}

func nodeStatus(t *testing.T, h *hub.Hub, id string) string {
	t.Helper()
	infos, err := h.NodeInfos(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.ID == id {
			return i.Status
		}
	}
	return ""
}

// TestCleanStopNotWaitedFor: a node whose link closes cleanly tells the
// hub it is leaving; a search right after does not wait for it (the
// deadline is 5 s) and reports it unreachable, the node list offline.
// Started again, the node comes back online and answers.
func TestCleanStopNotWaitedFor(t *testing.T) {
	const deadline = 5 * time.Second
	h, srv := tlsHub(t, hub.Config{SearchDeadline: deadline})
	ctx := context.Background()
	if err := h.AddUser(ctx, "alice", "long enough password", hub.RoleResearcher); err != nil {
		t.Fatal(err)
	}
	tok, err := h.NewUserToken(ctx, "alice", "test")
	if err != nil {
		t.Fatal(err)
	}
	n := enrolNode(t, h, srv, "north", node.Config{})
	l := startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come online")
	}
	if st, _ := searchAll(t, srv.URL, tok, "north"); st != hub.NodeAnswered {
		t.Fatalf("before the stop: node %s, want %s", st, hub.NodeAnswered)
	}

	l.Close()
	st, took := searchAll(t, srv.URL, tok, "north")
	t.Logf("search right after a clean stop: %s, node %s", took.Round(time.Millisecond), st)
	if st != hub.NodeUnreachable {
		t.Errorf("after a clean stop: node %s, want %s", st, hub.NodeUnreachable)
	}
	if took > deadline/2 {
		t.Errorf("a search right after a clean stop took %s: it waited for the node (deadline %s)", took, deadline)
	}
	if s := nodeStatus(t, h, "north"); s != "offline" {
		t.Errorf("node list after a clean stop: %s, want offline", s)
	}

	startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come back online after it left")
	}
	if st, _ := searchAll(t, srv.URL, tok, "north"); st != hub.NodeAnswered {
		t.Errorf("after the restart: node %s, want %s", st, hub.NodeAnswered)
	}
}

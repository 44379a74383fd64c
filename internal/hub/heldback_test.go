package hub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
)

// TestHeldBackShownToAdminsOnly: a node's dataset without licence and
// contact point is held back. The hub lists it with the reasons in the
// node API and on the Nodes page for administrators, and nowhere public:
// not in the catalogue, its DCAT-AP export, or search answers. Once the
// node's operator sets the fields, the dataset is published and no
// longer listed as held back.
func TestHeldBackShownToAdminsOnly(t *testing.T) {
	h, srv := tlsHub(t, hub.Config{})
	ctx := context.Background()
	if err := h.AddUser(ctx, uiAdmin, uiAdminPW, hub.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	tok, err := h.NewUserToken(ctx, uiAdmin, "test")
	if err != nil {
		t.Fatal(err)
	}
	n := enrolNode(t, h, srv, "north", node.Config{})
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "chest", Title: "Chest CT", Description: "Synthetic patients."}); err != nil {
		t.Fatal(err)
	}
	startLink(t, n)

	get := func(path, token string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %.300s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	heldBack := func() []fed.HeldBack {
		t.Helper()
		var out struct {
			Nodes []struct {
				ID       string
				HeldBack []fed.HeldBack `json:"held_back"`
			}
		}
		if err := json.Unmarshal([]byte(get("/api/v1/nodes", tok)), &out); err != nil {
			t.Fatal(err)
		}
		for _, nd := range out.Nodes {
			if nd.ID == "north" {
				return nd.HeldBack
			}
		}
		t.Fatal("node north missing from the node API")
		return nil
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 15s for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("the node's catalogue with the dataset held back", func() bool { return len(heldBack()) == 1 })

	hb := heldBack()[0]
	if hb.ID != "chest" || hb.Title != "Chest CT" || strings.Join(hb.Reasons, ", ") != "no licence, no contact point" {
		t.Errorf("held back: %+v; want chest, Chest CT, no licence and no contact point", hb)
	}
	public := map[string]string{
		"catalogue":      get("/api/v1/datasets", ""),
		"DCAT-AP":        get("/api/v1/catalogue?format=jsonld", ""),
		"DCAT-AP Turtle": get("/api/v1/catalogue?format=turtle", ""),
		"catalogue page": get("/catalogue", ""),
	}
	for name, body := range public {
		if strings.Contains(body, "chest") || strings.Contains(body, "Chest CT") {
			t.Errorf("the held-back dataset appears in the public %s:\n%.400s", name, body)
		}
	}
	if st, _ := searchAll(t, srv.URL, tok, "north"); st != hub.NodeAnswered {
		t.Errorf("search: node %s, want %s", st, hub.NodeAnswered)
	}
	res := search(t, srv.URL, tok)
	for _, r := range res.Results {
		if r.Dataset == "chest" {
			t.Errorf("the held-back dataset answers searches: %+v", r)
		}
	}
	// The Nodes page, for administrators.
	cookie := uiLogin(t, srv, uiAdmin, uiAdminPW)
	page := uiGet(t, srv.URL+"/nodes", cookie)
	uiWant(t, page, http.StatusOK, `data-dataset="chest"`, "Chest CT", "held back: no licence, no contact point")

	// The operator sets the licence and contact point: published.
	if _, err := n.UpdateDataset(ctx, "chest", func(d *index.Dataset) error {
		d.Licence, d.Contact = "CC-BY-4.0", "data@north.example"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wait("the dataset published", func() bool { return strings.Contains(get("/api/v1/datasets", ""), `"chest"`) })
	if hb := heldBack(); len(hb) != 0 {
		t.Errorf("published, but still listed as held back: %+v", hb)
	}
	if !strings.Contains(get("/api/v1/catalogue?format=turtle", ""), "north/chest") {
		t.Error("published, but not in the DCAT-AP export")
	}
	page = uiGet(t, srv.URL+"/nodes", cookie)
	uiWantNot(t, page, "held back: no licence")
}

// search runs a search for every patient through the hub's API.
func search(t *testing.T, url, tok string) hub.SearchResult {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res hub.SearchResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("search: %d %v", resp.StatusCode, err)
	}
	return res
}

// TestHeldBackWinsOverPublished: a catalogue message that both publishes
// a dataset and holds it back (a node at fault) leaves it out of the
// public catalogue, and the node's next catalogue replaces the list.
func TestHeldBackWinsOverPublished(t *testing.T) {
	h, srv := uiTestHub(t, hub.Config{})
	ctx := context.Background()
	d := fed.DatasetSummary{ID: "mixed", Title: "Mixed up", Licence: "CC-BY-4.0", Tier: 1}
	if err := h.PutCatalogue(ctx, fed.Catalogue{Node: "north", Datasets: []fed.DatasetSummary{d},
		HeldBack: []fed.HeldBack{{ID: "mixed", Title: "Mixed up", Tier: 1, Reasons: []string{"no contact point"}}}}); err != nil {
		t.Fatal(err)
	}
	cat := uiGet(t, srv.URL+"/api/v1/datasets", "")
	uiWantNot(t, cat, "mixed")
	infos, err := h.NodeInfos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.ID == "north" && (len(i.HeldBack) != 1 || i.HeldBack[0].ID != "mixed") {
			t.Errorf("north holds back %+v, want mixed", i.HeldBack)
		}
	}
	if err := h.PutCatalogue(ctx, fed.Catalogue{Node: "north", Datasets: []fed.DatasetSummary{d}}); err != nil {
		t.Fatal(err)
	}
	uiWant(t, uiGet(t, srv.URL+"/api/v1/datasets", ""), http.StatusOK, "mixed")
	if infos, _ := h.NodeInfos(ctx); len(infos) == 0 || len(infos[0].HeldBack) != 0 {
		t.Errorf("after a catalogue without held-back datasets: %+v", infos)
	}
}

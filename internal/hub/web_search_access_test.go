package hub_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
)

// TestUISearchLinksToAccessRequests: the results of a search on the web
// page carry a "Request access" link per dataset, and one for all of
// them, to the new access request page with the query the search ran and
// the datasets filled in; the page they open shows both, ready to send.
// Two real nodes answer over NATS.
func TestUISearchLinksToAccessRequests(t *testing.T) {
	h, srv := tlsHub(t, hub.Config{})
	ctx := context.Background()
	if err := h.AddUser(ctx, uiResearcher, uiResearcherPW, hub.RoleResearcher); err != nil {
		t.Fatal(err)
	}
	tok, err := h.NewUserToken(ctx, uiResearcher, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range []struct{ name, dataset string }{{"north", "chest"}, {"south", "pelvis"}} {
		n := enrolNode(t, h, srv, nd.name, node.Config{})
		if _, err := n.CreateDataset(ctx, index.Dataset{ID: nd.dataset, Title: "Synthetic " + nd.dataset, Description: "Synthetic patients.",
			Licence: "CC-BY-4.0", Contact: "data@" + nd.name + ".example", Tier: 2}); err != nil {
			t.Fatal(err)
		}
		startLink(t, n)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(search(t, srv.URL, tok).Results) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15s for both nodes' datasets to answer: %+v", search(t, srv.URL, tok))
		}
		time.Sleep(50 * time.Millisecond)
	}

	cookie := uiLogin(t, srv, uiResearcher, uiResearcherPW)
	r := uiPost(t, srv.URL+"/search", url.Values{"gender": {"female"}, "modality": {"CT"}}, cookie)
	uiWant(t, r, http.StatusOK, `id="results-table"`, `data-dataset="chest"`, `data-dataset="pelvis"`)
	ast := uiAST(t, r.body)

	// link reads a link of the page and checks the query and datasets it
	// carries, then opens it and checks the form shows them; it returns
	// the query the form holds.
	link := func(href string, want ...string) string {
		t.Helper()
		u, err := url.Parse(html.UnescapeString(href))
		if err != nil || u.Path != "/access/new" {
			t.Fatalf("link %q: want /access/new (%v)", href, err)
		}
		if got := uiCanonical(t, u.Query().Get("query")); got != ast {
			t.Errorf("link %q: query %s, want the search's %s", href, got, ast)
		}
		if got := u.Query()["dataset"]; !slices.Equal(got, want) {
			t.Errorf("link %q: datasets %v, want %v", href, got, want)
		}
		page := uiGet(t, srv.URL+u.RequestURI(), cookie)
		uiWant(t, page, http.StatusOK, "New access request",
			`<textarea id="datasets" name="datasets" rows="4" cols="50" required>`+strings.Join(want, "\n")+`</textarea>`)
		_, rest, ok := strings.Cut(page.body, `<textarea id="query" name="query" rows="4" cols="70" required>`)
		shown, _, _ := strings.Cut(rest, "</textarea>")
		if !ok || uiCanonical(t, html.UnescapeString(shown)) != ast {
			t.Errorf("the form's query %q, want the search's %s", shown, ast)
		}
		return html.UnescapeString(shown)
	}
	per := regexp.MustCompile(`<tr data-node="([a-z]+)" data-dataset="([a-z]+)"[^>]*>(?s:.*?)<a class="request-access" href="([^"]+)">Request access</a>`).FindAllStringSubmatch(r.body, -1)
	if len(per) != 2 {
		t.Fatalf("%d per-dataset request links, want 2:\n%s", len(per), r.body)
	}
	var all []string
	for _, m := range per {
		link(m[3], m[1]+"/"+m[2])
		all = append(all, m[1]+"/"+m[2])
	}
	one := regexp.MustCompile(`<a id="request-all" href="([^"]+)">`).FindStringSubmatch(r.body)
	if one == nil {
		t.Fatal("no link to request access to every dataset")
	}
	query := link(one[1], all...)

	// The form sent as the link filled it (with the fields a researcher
	// types) opens a draft.
	form := url.Values{"title": {"Lung nodules"}, "description": {"Training a detector."}, "datasets": {strings.Join(all, "\n")},
		"query": {query}, "operation": {"view"}, "days": {"30"}}
	resp := uiPost(t, srv.URL+"/access/new", form, cookie)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/access/ar-") {
		t.Fatalf("sending the prefilled form: %d to %q: %.300s", resp.StatusCode, resp.Header.Get("Location"), resp.body[strings.Index(resp.body, "<main"):])
	}
}

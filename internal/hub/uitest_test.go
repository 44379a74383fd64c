package hub_test

import (
	"context"
	"encoding/csv"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/synth"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

const (
	uiE2ENode    = "east-clinic"
	uiE2EDataset = "ui-cohort"
	uiE2EFloor   = 5
)

// uiCohortTruth is what the synthetic cohort's clinical table says,
// counted here independently of the node.
type uiCohortTruth struct {
	patients, female, femaleCT int
}

func uiReadTruth(t *testing.T, path string) uiCohortTruth {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	var tr uiCohortTruth
	for _, r := range rows[1:] {
		tr.patients++
		if r[col["birth_sex"]] == "female" {
			tr.female++
			if slices.Contains(strings.Split(r[col["modalities"]], ";"), "CT") {
				tr.femaleCT++
			}
		}
	}
	return tr
}

// uiExpect is what the node reports for n of all patients: 0 under the
// floor, the whole dataset when fewer than the floor are left out (the
// complement control), n otherwise.
func uiExpect(n, all int) int {
	switch {
	case n < uiE2EFloor:
		return 0
	case all-n < uiE2EFloor:
		return all
	}
	return n
}

// uiFederation is a running hub with one node.
type uiFederation struct {
	hub   *hub.Hub
	node  *node.Node
	url   string // the hub's
	truth uiCohortTruth
}

// uiStartFederation runs a hub on a real port and one node, enrolled and
// linked, holding a de-identified synthetic cohort.
func uiStartFederation(t *testing.T, ctx context.Context) uiFederation {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cohort := filepath.Join(t.TempDir(), "cohort")
	if _, err := synth.Generate(ctx, synth.Options{Dir: cohort, Patients: 25, Seed: 20260321}); err != nil {
		t.Fatal(err)
	}
	truth := uiReadTruth(t, filepath.Join(cohort, synth.ClinicalFile))

	h, err := hub.Open(ctx, hub.Config{Data: t.TempDir(), NATSListen: "127.0.0.1:0", SearchDeadline: 5 * time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	if err := h.AddUser(ctx, uiResearcher, uiResearcherPW, hub.RoleResearcher); err != nil {
		t.Fatal(err)
	}

	// Exact counts above the floor (no noise, no overlap control, no
	// budget cap), so that the page can be checked against the cohort;
	// docs/disclosure.md and internal/attack cover the defaults.
	noNoise, noOverlap := 0.0, false
	n, err := node.Open(ctx, node.Config{Data: t.TempDir(), Policy: "longitudinal", SearchFloor: uiE2EFloor,
		SearchNoise: &noNoise, SearchOverlap: &noOverlap, SearchDailyEpsilon: -1, SearchTotalEpsilon: -1, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: uiE2EDataset, Title: "Synthetic oncology cohort",
		Description: "Twenty-five synthetic patients for the web UI test.", AccessRights: "RESTRICTED", Tier: 3,
		Licence: "CC-BY-4.0", Contact: "data@east.example"}); err != nil {
		t.Fatal(err)
	}
	var tickets []*node.Ticket
	err = filepath.WalkDir(filepath.Join(cohort, synth.DICOMDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		tickets = append(tickets, n.Ingest(ctx, uiE2EDataset, "cli", f))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, tk := range tickets {
		switch o := tk.Wait(ctx); o.Status {
		case node.StatusStored, node.StatusDuplicate:
			stored++
		case node.StatusRejected: // burned-in text risk: refused at the door, as it should be
		default:
			t.Fatalf("ingest: %s %s: %s", o.Status, o.Code, o.Reason)
		}
	}
	if stored == 0 {
		t.Fatal("no object was stored")
	}
	f, err := os.Open(filepath.Join(cohort, synth.ClinicalFile))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := n.ImportClinical(ctx, uiE2EDataset, f)
	f.Close()
	if err != nil || rep.Imported != truth.patients {
		t.Fatalf("clinical import: %d of %d rows: %v %+v", rep.Imported, truth.patients, err, rep.Errors)
	}

	tok, err := h.AddNode(ctx, uiE2ENode, "East Clinic", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Enroll(ctx, srv.URL, tok, "test"); err != nil {
		t.Fatal(err)
	}
	link, err := n.StartLink(node.LinkOptions{Heartbeat: 200 * time.Millisecond, Version: "test"})
	if err != nil || link == nil {
		t.Fatalf("link: %v", err)
	}
	t.Cleanup(link.Close)

	// Ready when the node is online and its dataset is in the catalogue.
	for {
		infos, err := h.NodeInfos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cat, err := h.Catalogue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) == 1 && infos[0].Status == "online" && len(cat) == 1 && cat[0].Dataset.Subjects > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the node did not come online with its catalogue: %+v, %d datasets", infos, len(cat))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return uiFederation{hub: h, node: n, url: srv.URL, truth: truth}
}

// TestUIBrowser drives the web UI in headless Chromium against a real hub
// and node: log in, build a search, and read the node's counts off the
// results table.
func TestUIBrowser(t *testing.T) {
	testutil.NeedChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	fd := uiStartFederation(t, ctx)
	base, truth := fd.url, fd.truth
	t.Logf("federation ready in %s: %d patients, %d female, %d female with CT", time.Since(t0).Round(time.Millisecond), truth.patients, truth.female, truth.femaleCT)
	if truth.female < uiE2EFloor {
		t.Fatalf("the cohort has %d female patients, under the floor %d: choose another seed", truth.female, uiE2EFloor)
	}

	browser := testutil.Browser(t, ctx, chromedp.WindowSize(1280, 900))
	// Every browser step must finish well inside the test's budget.
	bctx, cancelSteps := context.WithTimeout(browser, 40*time.Second)
	defer cancelSteps()
	t1 := time.Now()

	shot := func(name string) {
		dir := os.Getenv("MOSAIC_UI_SCREENSHOTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Error(err)
		}
	}
	submit := func(what string, click chromedp.Action[chromedp.Void], want int) {
		t.Helper()
		resp, err := chromedp.RunResponse(bctx, click)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if resp.Status != int64(want) {
			t.Fatalf("%s: HTTP %d, want %d", what, resp.Status, want)
		}
	}

	// The search page sends visitors to the login form first.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/search"), chromedp.WaitVisible(chromedp.ID("user"))); err != nil {
		t.Fatal(err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != base+"/login?next=/search" {
		t.Fatalf("went to %q (%v), want the login form", loc, err)
	}
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("user"), uiResearcher),
		chromedp.SendKeys(chromedp.ID("password"), uiResearcherPW),
	); err != nil {
		t.Fatal(err)
	}
	submit("log in", chromedp.Click(chromedp.ID("login-submit")), http.StatusOK)
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != base+"/search" {
		t.Fatalf("after login at %q (%v), want the search page", loc, err)
	}

	// Female patients: the node counts its own subjects and, with the
	// floor at 5 and no rounding or noise, reports them exactly.
	if err := chromedp.Do(bctx, chromedp.SetValue(chromedp.ID("gender"), "female")); err != nil {
		t.Fatal(err)
	}
	submit("search female", chromedp.Click(chromedp.ID("run-search")), http.StatusOK)
	uiBrowserWantCount(t, bctx, uiExpect(truth.female, truth.patients))
	status, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#node-status tr[data-node="`+uiE2ENode+`"] .status`)))
	if err != nil || status != "answered" {
		t.Errorf("node status %q (%v), want answered", status, err)
	}
	query, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(".query")))
	if err != nil || !strings.Contains(strings.ToLower(query), "female") {
		t.Errorf("the page describes the query as %q (%v)", query, err)
	}
	shot("search-female")

	// Female AND CT: two criteria, the form kept as it was sent.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("modality-CT"))); err != nil {
		t.Fatal(err)
	}
	submit("search female CT", chromedp.Click(chromedp.ID("run-search")), http.StatusOK)
	uiBrowserWantCount(t, bctx, uiExpect(truth.femaleCT, truth.patients))

	// The dashboard draws its charts as SVG, from the node's catalogue.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("chart-modality"))); err != nil {
		t.Fatal(err)
	}
	for _, chart := range []string{"chart-modality", "chart-body-part"} {
		bars, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#`+chart+` rect.bar").length`))
		if err != nil || bars == 0 {
			t.Errorf("%s: %d bars (%v)", chart, bars, err)
		}
		box, err := chromedp.Run(bctx, chromedp.Dimensions(chromedp.ID(chart)))
		if err != nil || box.Width < 100 || box.Height < 20 {
			t.Errorf("%s is not drawn: %+v (%v)", chart, box, err)
		}
	}
	label, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(`#chart-modality text.label`)))
	if err != nil || label != "CT" {
		t.Errorf("first modality bar %q (%v), want CT", label, err)
	}
	shot("dashboard")

	// Logging out ends the session: the search page asks for a login again.
	submit("log out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), http.StatusOK)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/search"), chromedp.WaitVisible(chromedp.ID("login-submit"))); err != nil {
		t.Fatal(err)
	}
	t.Logf("browser steps took %s", time.Since(t1).Round(time.Millisecond))
}

// uiBrowserWantCount checks the subjects cell of the node's dataset.
func uiBrowserWantCount(t *testing.T, ctx context.Context, want int) {
	t.Helper()
	row := `#results-table tr[data-node="` + uiE2ENode + `"][data-dataset="` + uiE2EDataset + `"]`
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := chromedp.Run(qctx, chromedp.AttributeValue(chromedp.CSS(row+" td.subjects"), "data-count"))
	if err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
		t.Fatalf("results table: no row for the node's dataset (%v); the page says:\n%s", err, page)
	}
	if want < uiE2EFloor {
		want = 0 // under the floor the node reports an empty result
	}
	if got.Value != strconv.Itoa(want) {
		t.Fatalf("subjects shown %q, want %d", got.Value, want)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row+" td.subjects")))
	if err != nil || text != strconv.Itoa(want) {
		t.Errorf("subjects cell reads %q (%v), want %d", text, err, want)
	}
}

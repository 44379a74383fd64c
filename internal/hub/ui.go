package hub

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// The web pages are rendered on the server from templates embedded in the
// binary, with one stylesheet and no script: every page works without
// JavaScript, and charts are drawn as inline SVG. Pages show only what the
// API shows: catalogue summaries and counts under each node's disclosure
// control, never patient data.

//go:embed ui
var uiFiles embed.FS

// uiSessionTTL is how long a browser session lasts.
const uiSessionTTL = 12 * time.Hour

// uiCSP allows the page's own stylesheet and nothing else: no script, no
// external asset, no framing, forms posting only to the hub.
const uiCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var (
	uiTemplates = map[string]*template.Template{}
	uiCSS       []byte
	uiCSSHash   string
	uiVersion   = uiBuildVersion()
)

func init() {
	css, err := uiFiles.ReadFile("ui/style.css")
	if err != nil {
		panic(err)
	}
	uiCSS = css
	sum := sha256.Sum256(css)
	uiCSSHash = hex.EncodeToString(sum[:6])
	funcs := template.FuncMap{
		"num":      uiNum,
		"join":     func(v []string) string { return strings.Join(v, ", ") },
		"date":     uiDate,
		"datetime": uiDateTime,
		"ago":      uiAgo,
		"ms":       func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + " ms" },
		"tier":     uiTierName,
		"modality": uiModalityName,
		"part":     uiBodyPartName,
		"cssHash":  func() string { return uiCSSHash },
	}
	pages, err := fs.Glob(uiFiles, "ui/*.html")
	if err != nil {
		panic(err)
	}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "ui/"), ".html")
		if name == "layout" {
			continue
		}
		uiTemplates[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(uiFiles, "ui/layout.html", p))
	}
}

// uiBuildVersion is the module version the binary was built from, or ""
// for development builds.
func uiBuildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
}

// uiRoutes registers the web pages.
func (h *Hub) uiRoutes(route func(string, http.HandlerFunc)) {
	// Forms that change state (log in, log out, search) are refused when a
	// browser says they come from another site.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.uiMessage(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site. For your protection the hub only accepts forms sent from its own pages: go back to the hub and try again.")
	}))
	protect := func(fn http.HandlerFunc) http.HandlerFunc { return cop.Handler(fn).ServeHTTP }

	route("GET /ui/style.css", uiStyle)
	route("GET /{$}", h.uiDashboard)
	route("GET /catalogue", h.uiCatalogue)
	route("GET /datasets/{node}/{dataset}", h.uiDataset)
	route("GET /search", h.uiSearchForm)
	route("POST /search", protect(h.uiSearch))
	route("GET /nodes", h.uiNodes)
	route("GET /login", h.uiLoginForm)
	route("POST /login", protect(h.uiLogin))
	route("POST /logout", protect(h.uiLogout))
	// Every other GET: a 404 page for people, the API's JSON error under
	// /api/.
	route("GET /", h.uiNotFound)
}

// uiPage is what the layout renders around a page's content.
type uiPage struct {
	Title   string
	Active  string // the nav item of this page
	User    *User
	Version string
	// Here is the page's own path and query, for the login link to come
	// back to.
	Here string
	Body any
}

func (h *Hub) uiRender(w http.ResponseWriter, r *http.Request, status int, name string, p uiPage) {
	t := uiTemplates[name]
	if t == nil {
		panic("hub: no page template " + name)
	}
	if p.User == nil {
		if u, ok := h.userOf(r); ok {
			p.User = &u
		}
	}
	p.Version = uiVersion
	if r.Method == http.MethodGet && p.Here == "" && r.URL.Path != "/login" {
		p.Here = r.URL.RequestURI()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log.Error("page rendering failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", uiCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type uiMessageData struct {
	Heading, Text  string
	Link, LinkText string
}

// uiMessage renders a page that only says something (errors, refusals).
func (h *Hub) uiMessage(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	h.uiRender(w, r, status, "message", uiPage{Title: heading, Body: uiMessageData{Heading: heading, Text: text, Link: "/", LinkText: "Back to the dashboard"}})
}

func (h *Hub) uiInternalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.Error("page failed", "page", what, "err", err)
	h.uiMessage(w, r, http.StatusInternalServerError, "Something went wrong", "The hub could not build this page. Try again in a moment; if it keeps failing, tell the hub's operator.")
}

func uiStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(uiCSS)
}

func (h *Hub) uiNotFound(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") {
		apiError(w, http.StatusNotFound, "no GET endpoint at this path: see the API description")
		return
	}
	h.uiMessage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address. The catalogue lists every dataset of the federation.")
}

// ---- dashboard ----

type uiBar struct {
	Label, Title       string
	Value, Datasets    int
	Y, W, TextX, TextY int
}

type uiChart struct {
	ID, Title, Caption, Unit      string
	Width, Height, LabelW, LabelX int
	Bars                          []uiBar
}

type uiDashboardData struct {
	Datasets, Subjects, Studies int
	NodesOnline, NodesEnrolled  int
	Charts                      []uiChart
	Recent                      []CatalogueEntry
}

// uiBarChart lays out a horizontal bar chart of values per label; the
// template draws it as SVG.
func uiBarChart(id, title, caption, unit string, values, datasets map[string]int, name func(string) string) uiChart {
	const rowH, barH, labelW, barMax, top = 30, 20, 130, 330, 6
	c := uiChart{ID: id, Title: title, Caption: caption, Unit: unit, Width: labelW + barMax + 90, LabelW: labelW, LabelX: labelW - 8}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if values[keys[i]] != values[keys[j]] {
			return values[keys[i]] > values[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > 12 {
		keys = keys[:12]
	}
	most := 1
	for _, k := range keys {
		most = max(most, values[k])
	}
	for i, k := range keys {
		w := values[k] * barMax / most
		if values[k] > 0 {
			w = max(w, 2)
		}
		c.Bars = append(c.Bars, uiBar{Label: name(k), Title: k, Value: values[k], Datasets: datasets[k],
			Y: top + i*rowH, W: w, TextX: labelW + w + 6, TextY: top + i*rowH + barH/2 + 5})
	}
	c.Height = top*2 + max(1, len(keys))*rowH
	return c
}

func (h *Hub) uiDashboard(w http.ResponseWriter, r *http.Request) {
	entries, err := h.Store.Catalogue(r.Context())
	if err != nil {
		h.uiInternalError(w, r, "dashboard", err)
		return
	}
	nodes, err := h.NodeInfos(r.Context())
	if err != nil {
		h.uiInternalError(w, r, "dashboard", err)
		return
	}
	d := uiDashboardData{Datasets: len(entries)}
	for _, n := range nodes {
		if n.Status == "online" {
			d.NodesOnline++
		}
		if n.Status != "removed" && n.Status != "pending" {
			d.NodesEnrolled++
		}
	}
	modStudies, modSets := map[string]int{}, map[string]int{}
	partStudies, partSets := map[string]int{}, map[string]int{}
	recent := []CatalogueEntry{}
	for _, e := range entries {
		ds := e.Dataset
		d.Subjects += ds.Subjects
		d.Studies += ds.Studies
		for _, m := range ds.Modalities {
			modStudies[m] += ds.Studies
			modSets[m]++
		}
		for _, p := range ds.BodyParts {
			partStudies[p] += ds.Studies
			partSets[p]++
		}
		recent = append(recent, CatalogueEntry{Node: e.Node, NodeTitle: e.NodeTitle, Published: e.Published, DatasetSummary: ds})
	}
	const caption = "Catalogue summaries give each dataset's total studies and the modalities and body parts it holds, not counts per modality: a dataset counts in full towards each of its values."
	d.Charts = []uiChart{
		uiBarChart("chart-modality", "Studies by imaging modality", caption, "studies", modStudies, modSets, uiModalityName),
		uiBarChart("chart-body-part", "Studies by body part", caption, "studies", partStudies, partSets, uiBodyPartName),
	}
	sort.SliceStable(recent, func(i, j int) bool { return uiUpdated(recent[i]).After(uiUpdated(recent[j])) })
	if len(recent) > 8 {
		recent = recent[:8]
	}
	d.Recent = recent
	h.uiRender(w, r, http.StatusOK, "dashboard", uiPage{Title: "Dashboard", Active: "dashboard", Body: d})
}

// uiUpdated is when a dataset last changed as far as the catalogue knows.
func uiUpdated(e CatalogueEntry) time.Time {
	if e.Modified.IsZero() {
		return e.Published
	}
	return e.Modified
}

// ---- catalogue ----

type uiFacetValue struct {
	ID, Value, Label string
	Count            int
	Checked          bool
}

type uiFacet struct {
	Name, Label string
	Multi       bool // checkboxes (every checked value required) or one choice
	Chosen      bool // a value is chosen
	Values      []uiFacetValue
}

type uiChip struct{ Label, Remove string }

type uiCatalogueData struct {
	Q        string
	Total    int
	Datasets []CatalogueEntry
	Facets   []uiFacet
	Active   []uiChip
}

var uiFacetOrder = []struct {
	name, label string
	multi       bool
}{
	{"modality", "Modality", true}, {"body_part", "Body part", true}, {"condition", "Condition", true},
	{"manufacturer", "Manufacturer", true}, {"sex", "Sex", true}, {"node", "Node", false}, {"tier", "Tier", false},
}

func (h *Hub) uiCatalogue(w http.ResponseWriter, r *http.Request) {
	entries, err := h.Store.Catalogue(r.Context())
	if err != nil {
		h.uiInternalError(w, r, "catalogue", err)
		return
	}
	list := filterCatalogue(entries, r)
	counts := facets(list)
	q := r.URL.Query()
	nodeTitle := map[string]string{}
	for _, e := range entries {
		nodeTitle[e.Node] = e.NodeTitle
	}
	d := uiCatalogueData{Q: q.Get("q"), Total: len(entries), Datasets: list}
	for _, f := range uiFacetOrder {
		selected := map[string]bool{}
		if f.multi {
			for _, v := range q[f.name] {
				if v != "" {
					selected[v] = true
				}
			}
		} else if v := q.Get(f.name); v != "" {
			selected[v] = true
		}
		vals := map[string]int{}
		for v, n := range counts[f.name] {
			vals[v] = n
		}
		// A chosen value stays listed (with 0) so that it can be unchosen
		// when nothing matches.
		for v := range selected {
			if _, ok := vals[v]; !ok {
				vals[v] = 0
			}
		}
		keys := make([]string, 0, len(vals))
		for v := range vals {
			keys = append(keys, v)
		}
		sort.Strings(keys)
		fc := uiFacet{Name: f.name, Label: f.label, Multi: f.multi}
		for i, v := range keys {
			fc.Values = append(fc.Values, uiFacetValue{ID: fmt.Sprintf("f-%s-%d", f.name, i), Value: v,
				Label: uiFacetLabel(f.name, v, nodeTitle), Count: vals[v], Checked: selected[v]})
			if selected[v] {
				fc.Chosen = true
				d.Active = append(d.Active, uiChip{Label: f.label + ": " + uiFacetLabel(f.name, v, nodeTitle), Remove: uiWithout(q, f.name, v)})
			}
		}
		d.Facets = append(d.Facets, fc)
	}
	if s := strings.TrimSpace(d.Q); s != "" {
		d.Active = append([]uiChip{{Label: "Text: " + s, Remove: uiWithout(q, "q", d.Q)}}, d.Active...)
	}
	h.uiRender(w, r, http.StatusOK, "catalogue", uiPage{Title: "Catalogue", Active: "catalogue", Body: d})
}

func uiFacetLabel(facet, v string, nodeTitle map[string]string) string {
	switch facet {
	case "modality":
		return uiModalityName(v)
	case "body_part":
		return uiBodyPartName(v)
	case "node":
		if t := nodeTitle[v]; t != "" {
			return t
		}
	case "tier":
		if n, err := strconv.Atoi(v); err == nil {
			return uiTierName(n)
		}
	}
	return v
}

// uiWithout is the catalogue URL with one filter value removed.
func uiWithout(q url.Values, name, value string) string {
	out := url.Values{}
	for k, vs := range q {
		for _, v := range vs {
			if v != "" && !(k == name && v == value) {
				out.Add(k, v)
			}
		}
	}
	if len(out) == 0 {
		return "/catalogue"
	}
	return "/catalogue?" + out.Encode()
}

// ---- dataset ----

type uiDatasetData struct {
	CatalogueEntry
	ContactURL, ContactText string
	JSONLD, Turtle, API     string
}

func (h *Hub) uiDataset(w http.ResponseWriter, r *http.Request) {
	node, id := r.PathValue("node"), r.PathValue("dataset")
	e, ok, err := h.findDataset(r.Context(), node, id)
	if err != nil {
		h.uiInternalError(w, r, "dataset", err)
		return
	}
	if !ok {
		h.uiMessage(w, r, http.StatusNotFound, "Dataset not found", "No node publishes a dataset at this address. It may have been removed; the catalogue lists the current ones.")
		return
	}
	base := "/api/v1/datasets/" + url.PathEscape(e.Node) + "/" + url.PathEscape(e.ID)
	d := uiDatasetData{CatalogueEntry: e, JSONLD: base + "/dcat?format=jsonld", Turtle: base + "/dcat?format=turtle", API: base}
	switch c := strings.TrimSpace(e.Contact); {
	case strings.HasPrefix(c, "https://") || strings.HasPrefix(c, "http://"):
		d.ContactURL, d.ContactText = c, c
	case emailOf(c) != "":
		d.ContactURL, d.ContactText = "mailto:"+emailOf(c), emailOf(c)
	default:
		d.ContactText = c
	}
	h.uiRender(w, r, http.StatusOK, "dataset", uiPage{Title: e.Title, Active: "catalogue", Body: d})
}

// ---- search ----

type uiChoice struct {
	Value, Label, Code string
	Selected           bool
}

// Choices of the search form: the value the form sends, the label shown,
// and the code of EUCAIM's catalogue the query carries.
var (
	uiGenders = []uiChoice{
		{Value: "female", Label: "Female", Code: "SNOMEDCT248152002"},
		{Value: "male", Label: "Male", Code: "SNOMEDCT248153007"},
		{Value: "other", Label: "Other", Code: "SNOMEDCT74964007"},
		{Value: "unknown", Label: "Unknown", Code: "SNOMEDCT261665006"},
	}
	uiDiagnoses = []uiChoice{
		{Value: "lung", Label: "Lung cancer", Code: "SNOMEDCT363358000"},
		{Value: "breast", Label: "Breast cancer", Code: "SNOMEDCT254837009"},
		{Value: "prostate", Label: "Prostate cancer", Code: "SNOMEDCT399068003"},
		{Value: "colon", Label: "Colon (colorectal) cancer", Code: "SNOMEDCT363406005"},
		{Value: "liver", Label: "Liver cancer", Code: "SNOMEDCT93870000"},
		{Value: "pancreas", Label: "Pancreas cancer", Code: "SNOMEDCT363418001"},
	}
	uiModalities = []uiChoice{
		{Value: "CT", Label: "CT", Code: "RID10321"},
		{Value: "MR", Label: "MR", Code: "RID10312"},
		{Value: "PET", Label: "PET", Code: "RID10337"},
		{Value: "SPECT", Label: "SPECT", Code: "RID10334"},
	}
	uiBodyParts = []uiChoice{
		{Value: "breast", Label: "Breast", Code: "SNOMEDCT76752008"},
		{Value: "lung", Label: "Lung", Code: "SNOMEDCT39607008"},
		{Value: "pelvis", Label: "Pelvis", Code: "SNOMEDCT12921003"},
		{Value: "prostate", Label: "Prostate", Code: "SNOMEDCT41216001"},
		{Value: "colon", Label: "Colon", Code: "SNOMEDCT71854001"},
		{Value: "chest", Label: "Chest", Code: "SNOMEDCT51185008"},
		{Value: "abdomen", Label: "Abdomen", Code: "SNOMEDCT818981001"},
		{Value: "whole-body", Label: "Whole body", Code: "SNOMEDCT38266002"},
	}
)

// Search keys of EUCAIM's catalogue.
const (
	uiKeyGender       = "SNOMEDCT263495000"
	uiKeyAge          = "SNOMEDCT423493009"
	uiKeyDiagnosis    = "SNOMEDCT439401001"
	uiKeyYear         = "SNOMEDCT432213005"
	uiKeyModality     = "RID10311"
	uiKeyBodyPart     = "SNOMEDCT123037004"
	uiKeyManufacturer = "C25392"
)

// uiASTOp and uiASTCond are the two kinds of node of a Lens AST.
type uiASTOp struct {
	Operand  string `json:"operand"`
	Children []any  `json:"children"`
}

type uiASTCond struct {
	Key    string `json:"key"`
	Type   string `json:"type"`
	System string `json:"system"`
	Value  any    `json:"value"`
}

type uiASTRange struct {
	Min *int `json:"min,omitempty"`
	Max *int `json:"max,omitempty"`
}

// uiSearchForm is the search form as sent, kept to show it again.
type uiSearchForm struct {
	Gender, Diagnosis, BodyPart, Manufacturer string
	AgeMin, AgeMax, YearMin, YearMax          string
	Modalities                                map[string]bool
	Not                                       map[string]bool
}

type uiResultRow struct {
	Node, NodeTitle, Dataset, Name string
	InCatalogue                    bool
	Subjects, Studies              int
	Empty                          bool
	Floor                          int
	Age                            string
	Gender, Modality, BodyParts    []string
	// Refused explains a dataset that gave no figures (privacy budget
	// spent); Budget is what the researcher has left there, or "".
	Refused, Budget string
}

type uiNodeRow struct {
	NodeStatus
	Title, Explain string
}

type uiSearchResult struct {
	Query, QueryID string
	TookMS         float64
	Rows           []uiResultRow
	Nodes          []uiNodeRow
	Total          int
}

type uiSearchData struct {
	Form                          uiSearchForm
	Genders, Diagnoses, BodyParts []uiChoice
	Modalities                    []uiChoice
	Error                         string
	Result                        *uiSearchResult
	AST                           string
	SearchURL                     string
	MaxAge, MinYear, MaxYear      int
}

// Bounds the form accepts for ages and years of diagnosis.
const (
	uiMaxAge  = 130
	uiMinYear = 1900
	uiMaxYear = 2100
)

func uiChoices(list []uiChoice, selected func(string) bool) []uiChoice {
	out := make([]uiChoice, len(list))
	for i, c := range list {
		c.Selected = selected(c.Value)
		out[i] = c
	}
	return out
}

func (h *Hub) uiSearchPage(r *http.Request, f uiSearchForm) uiSearchData {
	if f.Modalities == nil {
		f.Modalities = map[string]bool{}
	}
	if f.Not == nil {
		f.Not = map[string]bool{}
	}
	return uiSearchData{
		Form:       f,
		Genders:    uiChoices(uiGenders, func(v string) bool { return v == f.Gender }),
		Diagnoses:  uiChoices(uiDiagnoses, func(v string) bool { return v == f.Diagnosis }),
		BodyParts:  uiChoices(uiBodyParts, func(v string) bool { return v == f.BodyPart }),
		Modalities: uiChoices(uiModalities, func(v string) bool { return f.Modalities[v] }),
		SearchURL:  h.baseURL(r) + "/api/v1/search",
		MaxAge:     uiMaxAge, MinYear: uiMinYear, MaxYear: uiMaxYear,
	}
}

// uiLoginPath is the login page that comes back to path afterwards.
func uiLoginPath(path string) string {
	return "/login?next=" + strings.ReplaceAll(url.QueryEscape(path), "%2F", "/")
}

func (h *Hub) uiSearchForm(w http.ResponseWriter, r *http.Request) {
	u, ok := h.userOf(r)
	if !ok {
		http.Redirect(w, r, uiLoginPath(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	// A link may fill the form in (GET /search?modality=CT); it runs only
	// when sent.
	f, _, _ := uiReadForm(r.URL.Query())
	h.uiRender(w, r, http.StatusOK, "search", uiPage{Title: "Search", Active: "search", User: &u, Body: h.uiSearchPage(r, f)})
}

func (h *Hub) uiSearch(w http.ResponseWriter, r *http.Request) {
	u, ok := h.userOf(r)
	if !ok {
		http.Redirect(w, r, uiLoginPath("/search"), http.StatusSeeOther)
		return
	}
	page := uiPage{Title: "Search", Active: "search", User: &u}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		d := h.uiSearchPage(r, uiSearchForm{})
		d.Error = "The form could not be read."
		page.Body = d
		h.uiRender(w, r, http.StatusBadRequest, "search", page)
		return
	}
	f, ast, err := uiReadForm(r.PostForm)
	d := h.uiSearchPage(r, f)
	if err != nil {
		d.Error = err.Error()
		page.Body = d
		h.uiRender(w, r, http.StatusBadRequest, "search", page)
		return
	}
	body, _ := json.Marshal(ast)
	pretty, _ := json.MarshalIndent(ast, "", "  ")
	d.AST = string(pretty)
	res, err := h.Search(r.Context(), u, body)
	if err != nil {
		var le *lens.Error
		status := http.StatusInternalServerError
		switch {
		case errors.As(err, &le):
			status, d.Error = http.StatusBadRequest, "The query was refused: "+err.Error()
		case errors.Is(err, ErrQuota):
			status, d.Error = http.StatusTooManyRequests, "You have reached your daily number of searches ("+strconv.Itoa(h.cfg.QueriesPerDay)+"). Try again tomorrow, or ask the hub's operator for a higher limit."
		default:
			h.log.Error("search failed", "err", err)
			d.Error = "The search failed. Try again in a moment."
		}
		page.Body = d
		h.uiRender(w, r, status, "search", page)
		return
	}
	d.Result = h.uiResult(r, res)
	page.Body = d
	h.uiRender(w, r, http.StatusOK, "search", page)
}

// uiResult arranges a search result for the page.
func (h *Hub) uiResult(r *http.Request, res SearchResult) *uiSearchResult {
	titles := map[string]string{}
	if nodes, err := h.Store.Nodes(r.Context()); err == nil {
		for _, n := range nodes {
			titles[n.ID] = n.Title
		}
	}
	inCat := map[string]bool{}
	if entries, err := h.Store.Catalogue(r.Context()); err == nil {
		for _, e := range entries {
			inCat[e.Node+"/"+e.Dataset.ID] = true
		}
	}
	floor := map[string]int{}
	out := &uiSearchResult{Query: res.Query, QueryID: res.QueryID, TookMS: res.TookMS}
	for _, n := range res.Nodes {
		floor[n.Node] = n.Floor
		out.Nodes = append(out.Nodes, uiNodeRow{NodeStatus: n, Title: titles[n.Node], Explain: uiStatusExplain[n.Status]})
	}
	for _, e := range res.Results {
		row := uiResultRow{Node: e.Node, NodeTitle: titles[e.Node], Dataset: e.Dataset, Name: e.Name, InCatalogue: inCat[e.Node+"/"+e.Dataset],
			Subjects: e.SubjectsCount, Studies: e.StudiesCount, Empty: e.SubjectsCount == 0, Floor: floor[e.Node],
			Gender: e.Gender, Modality: e.Modality, BodyParts: e.BodyParts}
		if row.Name == "" {
			row.Name = e.Dataset
		}
		if e.AgeRange != nil {
			row.Age = fmt.Sprintf("%d–%d", e.AgeRange.Min, e.AgeRange.Max)
		}
		switch e.Refused {
		case "":
		case "budget-day":
			row.Refused = "your privacy budget at this dataset is spent for today: it answers again tomorrow"
		case "budget-total":
			row.Refused = "your privacy budget at this dataset is spent: ask its data holder for access instead"
		default:
			row.Refused = "refused: " + e.Refused
		}
		if b := e.Budget; b != nil && b.TotalLeft >= 0 {
			row.Budget = fmt.Sprintf("ε %.2g left today, %.3g in all", b.DayLeft, b.TotalLeft)
		}
		out.Total += e.SubjectsCount
		out.Rows = append(out.Rows, row)
	}
	return out
}

var uiStatusExplain = map[string]string{
	NodeAnswered:    "answered in time",
	NodeLate:        "online, but did not answer before the deadline",
	NodeUnreachable: "enrolled, but not connected to the hub",
	NodeError:       "could not run the query",
}

// uiReadForm reads the search form and builds its Lens AST: an AND of
// the criteria filled in, an OR inside a multiple choice, BETWEEN for
// ranges, and a NOT around each criterion so marked. An empty form asks
// for every patient.
func uiReadForm(v url.Values) (uiSearchForm, uiASTOp, error) {
	f := uiSearchForm{
		Gender: v.Get("gender"), Diagnosis: v.Get("diagnosis"), BodyPart: v.Get("body_part"),
		Manufacturer: strings.TrimSpace(v.Get("manufacturer")),
		AgeMin:       strings.TrimSpace(v.Get("age_min")), AgeMax: strings.TrimSpace(v.Get("age_max")),
		YearMin: strings.TrimSpace(v.Get("year_min")), YearMax: strings.TrimSpace(v.Get("year_max")),
		Modalities: map[string]bool{}, Not: map[string]bool{},
	}
	for _, m := range v["modality"] {
		f.Modalities[m] = true
	}
	for _, n := range v["not"] {
		f.Not[n] = true
	}
	ast := uiASTOp{Operand: "AND", Children: []any{}}
	add := func(name string, n any) {
		if f.Not[name] {
			n = uiASTOp{Operand: "NOT", Children: []any{n}}
		}
		ast.Children = append(ast.Children, n)
	}
	code := func(list []uiChoice, value, what string) (string, error) {
		for _, c := range list {
			if c.Value == value {
				return c.Code, nil
			}
		}
		return "", fmt.Errorf("Unknown %s %q: choose one from the list.", what, value)
	}
	if f.Gender != "" {
		c, err := code(uiGenders, f.Gender, "gender")
		if err != nil {
			return f, ast, err
		}
		add("gender", uiASTCond{Key: uiKeyGender, Type: "EQUALS", Value: c})
	}
	age, err := uiRange(f.AgeMin, f.AgeMax, 0, uiMaxAge, "Age at diagnosis")
	if err != nil {
		return f, ast, err
	}
	if age != nil {
		add("age", uiASTCond{Key: uiKeyAge, Type: "BETWEEN", Value: age})
	}
	if f.Diagnosis != "" {
		c, err := code(uiDiagnoses, f.Diagnosis, "diagnosis")
		if err != nil {
			return f, ast, err
		}
		add("diagnosis", uiASTCond{Key: uiKeyDiagnosis, Type: "EQUALS", Value: c})
	}
	year, err := uiRange(f.YearMin, f.YearMax, uiMinYear, uiMaxYear, "Year of diagnosis")
	if err != nil {
		return f, ast, err
	}
	if year != nil {
		add("year", uiASTCond{Key: uiKeyYear, Type: "BETWEEN", Value: year})
	}
	var mods []any
	for _, c := range uiModalities {
		if f.Modalities[c.Value] {
			mods = append(mods, uiASTCond{Key: uiKeyModality, Type: "EQUALS", Value: c.Code})
		}
	}
	for m := range f.Modalities {
		if _, err := code(uiModalities, m, "imaging modality"); err != nil {
			return f, ast, err
		}
	}
	switch len(mods) {
	case 0:
	case 1:
		add("modality", mods[0])
	default:
		add("modality", uiASTOp{Operand: "OR", Children: mods})
	}
	if f.BodyPart != "" {
		c, err := code(uiBodyParts, f.BodyPart, "body part")
		if err != nil {
			return f, ast, err
		}
		add("body_part", uiASTCond{Key: uiKeyBodyPart, Type: "EQUALS", Value: c})
	}
	if f.Manufacturer != "" {
		if len(f.Manufacturer) > 64 {
			return f, ast, errors.New("Manufacturer: use at most 64 characters.")
		}
		for _, r := range f.Manufacturer {
			if r < 0x20 || r == 0x7f {
				return f, ast, errors.New("Manufacturer: control characters are not allowed.")
			}
		}
		add("manufacturer", uiASTCond{Key: uiKeyManufacturer, Type: "CONTAINS", Value: f.Manufacturer})
	}
	return f, ast, nil
}

// uiRange reads the two bounds of a whole-number range; nil when both
// are empty.
func uiRange(lo, hi string, least, most int, what string) (*uiASTRange, error) {
	if lo == "" && hi == "" {
		return nil, nil
	}
	var r uiASTRange
	for _, b := range []struct {
		s   string
		dst **int
	}{{lo, &r.Min}, {hi, &r.Max}} {
		if b.s == "" {
			continue
		}
		n, err := strconv.Atoi(b.s)
		if err != nil || n < least || n > most {
			return nil, fmt.Errorf("%s: give whole numbers from %d to %d.", what, least, most)
		}
		*b.dst = &n
	}
	if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
		return nil, fmt.Errorf("%s: the lower bound is above the upper one.", what)
	}
	return &r, nil
}

// ---- nodes ----

type uiNodesData struct {
	Alerts []Alert
	Nodes  []NodeInfo
	Now    time.Time
}

func (h *Hub) uiNodes(w http.ResponseWriter, r *http.Request) {
	u, ok := h.userOf(r)
	if !ok {
		http.Redirect(w, r, uiLoginPath(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if u.Role != RoleAdmin {
		h.uiRender(w, r, http.StatusForbidden, "message", uiPage{Title: "Administrators only", User: &u, Body: uiMessageData{
			Heading: "Administrators only", Text: "The node status page is for the hub's administrators. Your account is a " + u.Role + " account.",
			Link: "/", LinkText: "Back to the dashboard"}})
		return
	}
	nodes, err := h.NodeInfos(r.Context())
	if err != nil {
		h.uiInternalError(w, r, "nodes", err)
		return
	}
	h.uiRender(w, r, http.StatusOK, "nodes", uiPage{Title: "Nodes", Active: "nodes", User: &u, Body: uiNodesData{Nodes: nodes, Alerts: h.Alerts(), Now: time.Now()}})
}

// ---- login ----

type uiLoginData struct {
	Next, User, Error string
}

func (h *Hub) uiLoginForm(w http.ResponseWriter, r *http.Request) {
	h.uiRender(w, r, http.StatusOK, "login", uiPage{Title: "Log in", Active: "login", Body: uiLoginData{Next: uiLocalPath(r.URL.Query().Get("next"))}})
}

func (h *Hub) uiLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.uiRender(w, r, http.StatusBadRequest, "login", uiPage{Title: "Log in", Active: "login", Body: uiLoginData{Next: "/", Error: "The form could not be read."}})
		return
	}
	next := uiLocalPath(r.PostForm.Get("next"))
	name := strings.TrimSpace(r.PostForm.Get("user"))
	u, err := h.Login(r.Context(), name, r.PostForm.Get("password"), r.RemoteAddr, "web")
	var te *ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
		h.uiRender(w, r, http.StatusTooManyRequests, "login", uiPage{Title: "Log in", Active: "login",
			Body: uiLoginData{Next: next, User: name, Error: fmt.Sprintf(
				"Too many failed log-ins for this account or from your address. For your protection, log-ins are paused: try again in %s. Your password was not checked.",
				uiWait(te.Seconds()))}})
		return
	}
	if err != nil {
		h.uiRender(w, r, http.StatusUnauthorized, "login", uiPage{Title: "Log in", Active: "login",
			Body: uiLoginData{Next: next, User: name, Error: "Wrong user name or password."}})
		return
	}
	secret, err := h.Store.NewSession(r.Context(), u.ID, KindSession, "web login", uiSessionTTL)
	if err != nil {
		h.uiInternalError(w, r, "login", err)
		return
	}
	// A session the browser had before is ended, so that logging in always
	// starts a fresh one.
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		h.Store.EndSession(r.Context(), c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", MaxAge: int(uiSessionTTL / time.Second),
		Expires: time.Now().Add(uiSessionTTL), HttpOnly: true, Secure: h.uiSecure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Hub) uiLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := h.Store.EndSession(r.Context(), c.Value); err != nil {
			h.log.Error("ending a session failed", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(1, 0),
		HttpOnly: true, Secure: h.uiSecure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// uiSecure tells whether cookies must be sent over HTTPS only: when the
// request came over TLS, or the hub is published at an https URL (TLS
// ending at a proxy).
func (h *Hub) uiSecure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(h.cfg.PublicURL, "https://")
}

// uiLocalPath keeps a redirect target only when it is a path on this
// hub; anything else (another site, a scheme-relative //host, a
// backslash some browsers read as a slash) becomes "/".
func uiLocalPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	if u.Path == "/login" {
		return "/"
	}
	return next
}

// ---- formatting ----

// uiWait says a wait in seconds in words.
func uiWait(s int) string {
	switch {
	case s <= 1:
		return "1 second"
	case s < 120:
		return strconv.Itoa(s) + " seconds"
	default:
		return strconv.Itoa((s+59)/60) + " minutes"
	}
}

func uiNum(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func uiTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t != nil && !t.IsZero() {
			return *t, true
		}
	}
	return time.Time{}, false
}

func uiDate(v any) string {
	if t, ok := uiTime(v); ok {
		return t.UTC().Format("2 Jan 2006")
	}
	return "—"
}

func uiDateTime(v any) string {
	if t, ok := uiTime(v); ok {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return "never"
}

func uiAgo(v any) string {
	t, ok := uiTime(v)
	if !ok {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
}

func uiTierName(n int) string {
	switch n {
	case 1:
		return "Tier 1: catalogue only"
	case 2:
		return "Tier 2: searchable"
	case 3:
		return "Tier 3: searchable, full data model"
	}
	return "Tier " + strconv.Itoa(n)
}

var uiModalityNames = map[string]string{
	"CT": "CT", "MR": "MR", "PT": "PET", "NM": "SPECT / NM", "US": "Ultrasound", "MG": "Mammography",
	"CR": "Radiography (CR)", "DX": "Radiography (DX)", "OT": "Other", "SC": "Secondary capture",
}

func uiModalityName(m string) string {
	if n, ok := uiModalityNames[strings.ToUpper(m)]; ok {
		return n
	}
	return m
}

// uiBodyPartName writes a DICOM Body Part Examined term (WHOLEBODY,
// CHEST) in words.
func uiBodyPartName(p string) string {
	switch strings.ToUpper(p) {
	case "WHOLEBODY":
		return "Whole body"
	case "HEADNECK":
		return "Head and neck"
	case "CHESTABDPELVIS":
		return "Chest, abdomen, pelvis"
	case "ABDOMENPELVIS":
		return "Abdomen and pelvis"
	}
	lower := []rune(strings.ToLower(strings.ReplaceAll(p, "_", " ")))
	if len(lower) == 0 {
		return p
	}
	lower[0] = unicode.ToUpper(lower[0])
	return string(lower)
}

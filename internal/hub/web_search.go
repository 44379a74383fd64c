package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// The search page: a form of the criteria EUCAIM's catalogue offers,
// built into a lens.Query and run as a federated search.

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
	// RequestURL opens an access request for this dataset with the
	// query filled in.
	RequestURL string
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
	// RequestAllURL opens one access request for every dataset of the
	// result, with the query filled in.
	RequestAllURL string
}

// uiAccessRequestURL is the new access request page with the query (a
// compact Lens AST) and datasets (node/dataset) filled in.
func uiAccessRequestURL(query []byte, datasets ...string) string {
	v := url.Values{"dataset": datasets}
	if len(query) > 0 {
		v.Set("query", string(query))
	}
	return "/access/new?" + v.Encode()
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
	f, q, err := uiReadForm(r.PostForm)
	d := h.uiSearchPage(r, f)
	if err != nil {
		d.Error = err.Error()
		page.Body = d
		h.uiRender(w, r, http.StatusBadRequest, "search", page)
		return
	}
	// The query as the API takes it, for researchers who script.
	wire, _ := q.MarshalJSON()
	var pretty bytes.Buffer
	json.Indent(&pretty, wire, "", "  ")
	d.AST = pretty.String()
	res, err := h.Search(r.Context(), u, q)
	if err != nil {
		var le *lens.Error
		status := http.StatusInternalServerError
		switch {
		case errors.As(err, &le):
			status, d.Error = http.StatusBadRequest, "The query was refused: "+err.Error()
		case errors.Is(err, ErrQuota):
			status, d.Error = http.StatusTooManyRequests, "You have reached your daily number of searches ("+strconv.Itoa(h.cfg.QueriesPerDay)+"). Try again tomorrow, or ask the hub's operator for a higher limit."
		case errors.Is(err, ErrAudit):
			status, d.Error = http.StatusServiceUnavailable, "The hub cannot write its audit log, so it runs no search. Try again later; if it keeps failing, tell the hub's operator."
		default:
			h.log.Error("search failed", "err", err)
			d.Error = "The search failed. Try again in a moment."
		}
		page.Body = d
		h.uiRender(w, r, status, "search", page)
		return
	}
	d.Result = h.uiResult(r, res, wire)
	page.Body = d
	h.uiRender(w, r, http.StatusOK, "search", page)
}

// uiResult arranges a search result for the page; query is the Lens
// AST the search ran, which the access request links carry.
func (h *Hub) uiResult(r *http.Request, res SearchResult, query []byte) *uiSearchResult {
	titles := map[string]string{}
	if nodes, err := h.store.Nodes(r.Context()); err == nil {
		for _, n := range nodes {
			titles[n.ID] = n.Title
		}
	}
	inCat := map[string]bool{}
	if entries, err := h.store.Catalogue(r.Context()); err == nil {
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
		case fed.RefusedBudgetDay:
			row.Refused = "your privacy budget at this dataset is spent for today: it answers again tomorrow"
		case fed.RefusedBudgetTotal:
			row.Refused = "your privacy budget at this dataset is spent: ask its data holder for access instead"
		default:
			row.Refused = "refused: " + e.Refused
		}
		if b := e.Budget; b != nil && b.TotalLeft >= 0 {
			row.Budget = fmt.Sprintf("ε %.2g left today, %.3g in all", b.DayLeft, b.TotalLeft)
		}
		row.RequestURL = uiAccessRequestURL(query, e.Node+"/"+e.Dataset)
		out.Total += e.SubjectsCount
		out.Rows = append(out.Rows, row)
	}
	if len(out.Rows) > 1 {
		all := make([]string, len(out.Rows))
		for i, row := range out.Rows {
			all[i] = row.Node + "/" + row.Dataset
		}
		out.RequestAllURL = uiAccessRequestURL(query, all...)
	}
	return out
}

var uiStatusExplain = map[string]string{
	NodeAnswered:    "answered in time",
	NodeLate:        "online, but did not answer before the deadline",
	NodeUnreachable: "enrolled, but not connected to the hub",
	NodeError:       "could not run the query",
}

// uiReadForm reads the search form and builds its Lens query: an AND of
// the criteria filled in, an OR inside a multiple choice, a range for
// ages and years, and a NOT around each criterion so marked. An empty
// form asks for every patient. Errors are sentences for the page.
func uiReadForm(v url.Values) (uiSearchForm, *lens.Query, error) {
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
	var all []*lens.Node
	add := func(name string, n *lens.Node) {
		if f.Not[name] {
			n = lens.Negate(n)
		}
		all = append(all, n)
	}
	// choice adds the condition of one value of a list; an error of the
	// builder cannot come from the lists' own codes, but is passed on.
	choice := func(name string, a lens.Attr, list []uiChoice, value, what string) error {
		if value == "" {
			return nil
		}
		for _, c := range list {
			if c.Value == value {
				n, err := lens.Is(a, c.Code)
				if err != nil {
					return err
				}
				add(name, n)
				return nil
			}
		}
		return fmt.Errorf("Unknown %s %q: choose one from the list.", what, value)
	}
	between := func(name string, a lens.Attr, lo, hi string, least, most int, what string) error {
		min, max, err := uiRange(lo, hi, least, most, what)
		if err != nil || (min == nil && max == nil) {
			return err
		}
		n, err := lens.Between(a, min, max)
		if err != nil {
			return err
		}
		add(name, n)
		return nil
	}
	if err := choice("gender", lens.Gender, uiGenders, f.Gender, "gender"); err != nil {
		return f, nil, err
	}
	if err := between("age", lens.AgeAtDiagnosis, f.AgeMin, f.AgeMax, 0, uiMaxAge, "Age at diagnosis"); err != nil {
		return f, nil, err
	}
	if err := choice("diagnosis", lens.Diagnosis, uiDiagnoses, f.Diagnosis, "diagnosis"); err != nil {
		return f, nil, err
	}
	if err := between("year", lens.YearOfDiagnosis, f.YearMin, f.YearMax, uiMinYear, uiMaxYear, "Year of diagnosis"); err != nil {
		return f, nil, err
	}
	for m := range f.Modalities {
		if !slices.ContainsFunc(uiModalities, func(c uiChoice) bool { return c.Value == m }) {
			return f, nil, fmt.Errorf("Unknown imaging modality %q: choose one from the list.", m)
		}
	}
	var mods []*lens.Node
	for _, c := range uiModalities {
		if f.Modalities[c.Value] {
			n, err := lens.Is(lens.Modality, c.Code)
			if err != nil {
				return f, nil, err
			}
			mods = append(mods, n)
		}
	}
	switch len(mods) {
	case 0:
	case 1:
		add("modality", mods[0])
	default:
		add("modality", lens.AnyOf(mods...))
	}
	if err := choice("body_part", lens.BodyPart, uiBodyParts, f.BodyPart, "body part"); err != nil {
		return f, nil, err
	}
	if f.Manufacturer != "" {
		if len(f.Manufacturer) > 64 {
			return f, nil, errors.New("Manufacturer: use at most 64 characters.")
		}
		for _, r := range f.Manufacturer {
			if r < 0x20 || r == 0x7f {
				return f, nil, errors.New("Manufacturer: control characters are not allowed.")
			}
		}
		n, err := lens.Contains(lens.Manufacturer, f.Manufacturer)
		if err != nil {
			return f, nil, err
		}
		add("manufacturer", n)
	}
	q, err := lens.NewQuery(lens.AllOf(all...))
	return f, q, err
}

// uiRange reads the two bounds of a whole-number range; both nil when
// both are empty.
func uiRange(lo, hi string, least, most int, what string) (min, max *int, err error) {
	for _, b := range []struct {
		s   string
		dst **int
	}{{lo, &min}, {hi, &max}} {
		if b.s == "" {
			continue
		}
		n, err := strconv.Atoi(b.s)
		if err != nil || n < least || n > most {
			return nil, nil, fmt.Errorf("%s: give whole numbers from %d to %d.", what, least, most)
		}
		*b.dst = &n
	}
	if min != nil && max != nil && *min > *max {
		return nil, nil, fmt.Errorf("%s: the lower bound is above the upper one.", what)
	}
	return min, max, nil
}

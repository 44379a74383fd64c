package hub

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// The catalogue page: every published dataset, with free text and facet
// filters.

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
	entries, err := h.store.Catalogue(r.Context())
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

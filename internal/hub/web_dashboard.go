package hub

import (
	"net/http"
	"sort"
	"time"
)

// The dashboard: the federation in figures and charts, and the datasets
// changed last.

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
	entries, err := h.store.Catalogue(r.Context())
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

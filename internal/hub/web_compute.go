package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/compute"
)

// The pages of federated computations: the researcher's recent analyses
// (/analyses) and a learning run's rounds with a chart of the loss per
// round (/learning/{id}), drawn on the server as inline SVG; the page
// refreshes itself while the run goes on.

func (h *Hub) computePages(route func(string, http.HandlerFunc)) {
	route("GET /analyses", h.uiAnalyses)
	route("GET /learning/{id}", h.uiLearning)
}

// uiAnalysisRow is one computation in the list.
type uiAnalysisRow struct {
	compute.Record
	Fit   *analysisOut
	Nodes int
}

type uiAnalysesData struct {
	Rows     []uiAnalysisRow
	Learning []compute.Record
}

func (h *Hub) uiAnalyses(w http.ResponseWriter, r *http.Request) {
	u, ok := h.userOf(r)
	if !ok {
		http.Redirect(w, r, uiLoginPath(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	cs := h.compute.Load()
	if cs == nil {
		h.uiMessage(w, r, http.StatusServiceUnavailable, "Not available", "Federated computations are not enabled on this hub.")
		return
	}
	recs, err := cs.store.List(r.Context(), u.ID, compute.KindAnalysis, 20)
	if err != nil {
		h.uiInternalError(w, r, "analyses", err)
		return
	}
	var d uiAnalysesData
	for _, rec := range recs {
		row := uiAnalysisRow{Record: rec}
		if rec.Result != "" {
			var out analysisOut
			if json.Unmarshal([]byte(rec.Result), &out) == nil && out.AnalysisResult != nil {
				row.Fit = &out
				row.Nodes = len(out.RowsPerNode)
			}
		}
		d.Rows = append(d.Rows, row)
	}
	if d.Learning, err = cs.store.List(r.Context(), u.ID, compute.KindLearning, 20); err != nil {
		h.uiInternalError(w, r, "analyses", err)
		return
	}
	h.uiRender(w, r, http.StatusOK, "analyses", uiPage{Title: "Analyses", Active: "analyses", User: &u, Body: d})
}

// uiLossChart is a line chart of one value per round, in SVG coordinates.
type uiLossChart struct {
	Width, Height float64
	Points        string
	Dots          []uiLossDot
	YMin, YMax    string
	XMax          int
}

type uiLossDot struct {
	X, Y  float64
	Label string
}

// lossChart draws the loss of each round (rounds without a released
// loss are left out).
func lossChart(rounds []compute.Round) *uiLossChart {
	const w, hgt, pad = 600.0, 220.0, 30.0
	lo, hi := math.Inf(1), math.Inf(-1)
	n := 0
	for _, rd := range rounds {
		if rd.Loss != nil {
			lo, hi = math.Min(lo, *rd.Loss), math.Max(hi, *rd.Loss)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if hi == lo {
		hi, lo = hi+0.5, lo-0.5
	}
	last := rounds[len(rounds)-1].Round
	c := &uiLossChart{Width: w, Height: hgt, YMin: fmt.Sprintf("%.4g", lo), YMax: fmt.Sprintf("%.4g", hi), XMax: last}
	var pts []string
	for _, rd := range rounds {
		if rd.Loss == nil {
			continue
		}
		x := pad
		if last > 1 {
			x = pad + (w-2*pad)*float64(rd.Round-1)/float64(last-1)
		}
		y := hgt - pad - (hgt-2*pad)*(*rd.Loss-lo)/(hi-lo)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		c.Dots = append(c.Dots, uiLossDot{X: math.Round(x*10) / 10, Y: math.Round(y*10) / 10, Label: fmt.Sprintf("round %d: loss %.5g", rd.Round, *rd.Loss)})
	}
	c.Points = strings.Join(pts, " ")
	return c
}

type uiLearningData struct {
	compute.Record
	Spec   compute.LearningSpec
	Rounds []compute.Round
	Chart  *uiLossChart
	Secure bool
}

func (h *Hub) uiLearning(w http.ResponseWriter, r *http.Request) {
	u, ok := h.userOf(r)
	if !ok {
		http.Redirect(w, r, uiLoginPath(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	cs := h.compute.Load()
	if cs == nil {
		h.uiMessage(w, r, http.StatusServiceUnavailable, "Not available", "Federated computations are not enabled on this hub.")
		return
	}
	rec, err := cs.store.Get(r.Context(), r.PathValue("id"), u.ID)
	if errors.Is(err, compute.ErrNotFound) || (err == nil && rec.Kind != compute.KindLearning) {
		h.uiMessage(w, r, http.StatusNotFound, "No such learning run", "There is no learning run of yours at this address.")
		return
	}
	if err != nil {
		h.uiInternalError(w, r, "learning", err)
		return
	}
	d := uiLearningData{Record: *rec}
	json.Unmarshal([]byte(rec.Request), &d.Spec)
	d.Secure = d.Spec.Secure == nil || *d.Spec.Secure
	var res struct {
		Rounds []compute.Round `json:"rounds"`
	}
	json.Unmarshal([]byte(rec.Result), &res)
	cs.mu.Lock()
	if st, ok := cs.running[rec.ID]; ok && len(st.Rounds) > 0 {
		res.Rounds = st.Rounds
	}
	cs.mu.Unlock()
	d.Rounds, d.Chart = res.Rounds, lossChart(res.Rounds)
	if rec.State == compute.StateRunning {
		w.Header().Set("Refresh", "5")
	}
	h.uiRender(w, r, http.StatusOK, "learning", uiPage{Title: "Learning run " + rec.Name, Active: "analyses", User: &u, Body: d})
}

package hub

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dcat"
)

// catalogueRoutes serves the catalogue as EUCAIM DCAT-AP (JSON-LD or
// Turtle by content negotiation, or ?format=jsonld|turtle) for harvesters,
// and a FAIR Data Point entry point. Public: no login.
func (h *Hub) catalogueRoutes(route func(string, http.HandlerFunc)) {
	route("GET /api/v1/catalogue", h.dcatCatalogue)
	route("GET /api/v1/datasets/{node}/{dataset}/dcat", h.dcatDataset)
	route("GET /fdp", h.fdp)
}

func dcatFormat(r *http.Request) string {
	switch f := r.URL.Query().Get("format"); f {
	case "jsonld", "turtle":
		return f
	}
	return dcat.Negotiate(r.Header.Get("Accept"))
}

func contentType(format string) string {
	if format == "turtle" {
		return "text/turtle; charset=utf-8"
	}
	return "application/ld+json"
}

// dcatCatalogue builds the DCAT view of the current catalogue.
func (h *Hub) dcatCatalogue(w http.ResponseWriter, r *http.Request) {
	h.writeDCAT(w, r, "", "")
}

func (h *Hub) dcatDataset(w http.ResponseWriter, r *http.Request) {
	h.writeDCAT(w, r, r.PathValue("node"), r.PathValue("dataset"))
}

func (h *Hub) writeDCAT(w http.ResponseWriter, r *http.Request, node, dataset string) {
	cat, err := h.dcatView(r.Context(), r)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	var only *dcat.Dataset
	if node != "" {
		for i := range cat.Datasets {
			if cat.Datasets[i].ID == node+"/"+dataset {
				only = &cat.Datasets[i]
			}
		}
		if only == nil {
			apiError(w, http.StatusNotFound, "no such dataset in the catalogue")
			return
		}
	}
	format := dcatFormat(r)
	var buf bytes.Buffer
	if format == "turtle" {
		err = dcat.WriteTurtle(&buf, cat, only)
	} else {
		err = dcat.WriteJSONLD(&buf, cat, only)
	}
	if err != nil {
		h.log.Error("DCAT export failed", "err", err)
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", contentType(format))
	w.Header().Set("Vary", "Accept")
	w.Write(buf.Bytes())
}

func (h *Hub) fdp(w http.ResponseWriter, r *http.Request) {
	cat, err := h.dcatView(r.Context(), r)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	format := dcatFormat(r)
	var buf bytes.Buffer
	if err := dcat.WriteFDP(&buf, cat, format); err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", contentType(format))
	w.Header().Set("Vary", "Accept")
	w.Write(buf.Bytes())
}

// baseURL is the hub's public URL, or the one the request used.
func (h *Hub) baseURL(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return strings.TrimSuffix(h.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *Hub) dcatView(ctx context.Context, r *http.Request) (dcat.Catalogue, error) {
	entries, err := h.store.Catalogue(ctx)
	if err != nil {
		return dcat.Catalogue{}, err
	}
	base := h.baseURL(r)
	cat := dcat.Catalogue{BaseURL: base, Title: "Mosaic federated cancer imaging catalogue",
		Description: "Datasets of cancer images and linked clinical data held by the nodes of this Mosaic federation.",
		Publisher:   "Mosaic hub at " + base}
	var oldest, newest time.Time
	for _, e := range entries {
		d := e.Dataset
		ds := dcat.Dataset{
			ID: e.Node + "/" + d.ID, Title: d.Title, Description: d.Description, Version: d.Modified.UTC().Format("2006-01-02"),
			Keywords: append(append([]string{}, d.Conditions...), d.Modalities...),
			Node:     e.Node, NodeTitle: e.NodeTitle, ContactEmail: emailOf(d.Contact), ContactURL: urlOf(d.Contact), ContactName: e.NodeTitle,
			Licence: d.Licence, AccessRights: d.AccessRights, Tier: d.Tier, Subjects: d.Subjects, Studies: d.Studies,
			Sexes: d.Sexes, Modalities: d.Modalities, BodyParts: d.BodyParts, Manufacturers: d.Manufacturers,
			Issued: e.Published, Modified: d.Modified, LandingPage: base + "/datasets/" + e.Node + "/" + d.ID,
		}
		for _, c := range d.Conditions {
			ds.Conditions = append(ds.Conditions, conditionOf(c))
		}
		if d.AgeRange != nil {
			lo, hi := d.AgeRange.Min, d.AgeRange.Max
			ds.AgeMin, ds.AgeMax = &lo, &hi
		}
		if oldest.IsZero() || e.Published.Before(oldest) {
			oldest = e.Published
		}
		if d.Modified.After(newest) {
			newest = d.Modified
		}
		cat.Datasets = append(cat.Datasets, ds)
	}
	if oldest.IsZero() {
		oldest = time.Now().UTC()
	}
	if newest.IsZero() {
		newest = oldest
	}
	cat.Issued, cat.Modified = oldest, newest
	return cat, nil
}

func emailOf(contact string) string {
	if strings.Contains(contact, "@") && !strings.Contains(contact, "://") {
		return strings.TrimPrefix(contact, "mailto:")
	}
	return ""
}

func urlOf(contact string) string {
	if strings.HasPrefix(contact, "http://") || strings.HasPrefix(contact, "https://") {
		return contact
	}
	return ""
}

// conditionOf maps the node's cancer types to ICD-10 chapters.
func conditionOf(cancerType string) dcat.Condition {
	codes := map[string]string{"breast": "C50", "lung": "C34", "prostate": "C61", "colorectal": "C18-C20", "liver": "C22", "pancreas": "C25"}
	return dcat.Condition{Code: codes[cancerType], System: "ICD-10", Label: cancerType + " cancer"}
}

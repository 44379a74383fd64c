package hub

import (
	"net/http"
	"net/url"
	"strings"
)

// A dataset's page, with links to its DCAT-AP descriptions.

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

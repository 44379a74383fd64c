package hub

import (
	"net/http"
	"slices"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/viewer"
)

// viewerRoutes serves the image viewer at /viewer/?permit=ID for the
// researcher who holds a permit with view or download: the page reads
// the permit's snapshot through the relay at /dicom-web/permits/ID/ on
// the same origin, with the researcher's session cookie. The viewer
// sets its own Content Security Policy (scripts from the hub only).
func (h *Hub) viewerRoutes(mux *http.ServeMux) {
	v := http.StripPrefix("/viewer", viewer.Handler(h.viewerRoot))
	mux.Handle("GET /viewer/", h.instrument("GET /viewer/", v))
	mux.Handle("GET /viewer", http.RedirectHandler("/viewer/", http.StatusMovedPermanently))
}

// viewerRoot is the DICOMweb root of the permit a viewer page names, if
// the session's user holds it and it lets them view images now.
func (h *Hub) viewerRoot(r *http.Request) (string, bool) {
	id := r.URL.Query().Get("permit")
	st := h.access.Load()
	if id == "" || len(id) > 64 || st == nil {
		return "", false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	u, err := h.store.Authenticate(r.Context(), c.Value)
	if err != nil {
		return "", false
	}
	p, err := st.svc.Permit(r.Context(), id, u.ID)
	if err != nil || p.RevokedAt != nil || !p.Expires.After(time.Now()) {
		return "", false
	}
	if !slices.Contains(p.Operations, string(permit.OpView)) && !slices.Contains(p.Operations, string(permit.OpDownload)) {
		return "", false
	}
	return "/dicom-web/permits/" + id + "/", true
}

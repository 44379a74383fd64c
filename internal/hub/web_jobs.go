package hub

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mosaic-imaging/mosaic/internal/jobs"
)

// The jobs pages: a researcher's jobs (an admin's: every job), one job's
// state, progress, released logs and outputs per node, and the tool
// catalogue with a review form for logged-in users. They call the same
// jobs.Service as the JSON API; the review form is protected against
// cross-site posts like every form of the hub.

func (h *Hub) jobPages(route func(string, http.HandlerFunc)) {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.uiMessage(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site. For your protection the hub only accepts forms sent from its own pages: go back to the hub and try again.")
	}))
	route("GET /jobs", h.uiJobs)
	route("GET /jobs/{id}", h.uiJob)
	route("GET /jobs/{id}/outputs/{node}/{name}", h.uiJobOutput)
	route("GET /tools", h.uiTools)
	route("POST /tools/{id}/review", cop.Handler(http.HandlerFunc(h.uiToolReview)).ServeHTTP)
}

// uiJobsUser returns the logged-in user and the service, or answers
// itself (login redirect, 503).
func (h *Hub) uiJobsUser(w http.ResponseWriter, r *http.Request) (*jobs.Service, jobs.Actor, *User, bool) {
	u, ok := h.userOf(r)
	if !ok {
		http.Redirect(w, r, uiLoginPath(r.URL.RequestURI()), http.StatusSeeOther)
		return nil, jobs.Actor{}, nil, false
	}
	svc := h.Jobs()
	if svc == nil {
		h.uiMessage(w, r, http.StatusServiceUnavailable, "Jobs are not enabled", "This hub does not run jobs. Ask its operator.")
		return nil, jobs.Actor{}, nil, false
	}
	return svc, jobs.Actor{ID: u.ID, Admin: u.Role == RoleAdmin}, &u, true
}

func (h *Hub) uiJobsError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		h.uiMessage(w, r, http.StatusNotFound, "Not found", "There is no such job or tool, or it is not yours.")
	case errors.Is(err, jobs.ErrForbidden):
		h.uiMessage(w, r, http.StatusForbidden, "Not allowed", err.Error())
	case errors.Is(err, jobs.ErrInvalid), errors.Is(err, jobs.ErrConflict):
		h.uiMessage(w, r, http.StatusBadRequest, "Please check the form", err.Error())
	default:
		h.uiInternalError(w, r, "jobs", err)
	}
}

func (h *Hub) uiJobs(w http.ResponseWriter, r *http.Request) {
	svc, a, u, ok := h.uiJobsUser(w, r)
	if !ok {
		return
	}
	l, err := svc.List(r.Context(), a)
	if err != nil {
		h.uiJobsError(w, r, err)
		return
	}
	h.uiRender(w, r, http.StatusOK, "jobs", uiPage{Title: "Jobs", Active: "jobs", User: u, Body: l})
}

type uiJobView struct {
	Job  *jobs.Job
	Logs []jobs.LogLine
}

func (h *Hub) uiJob(w http.ResponseWriter, r *http.Request) {
	svc, a, u, ok := h.uiJobsUser(w, r)
	if !ok {
		return
	}
	j, err := svc.Get(r.Context(), a, r.PathValue("id"))
	if err != nil {
		h.uiJobsError(w, r, err)
		return
	}
	logs, err := svc.Logs(r.Context(), a, j.ID, "", 0, 2000)
	if err != nil {
		h.uiJobsError(w, r, err)
		return
	}
	h.uiRender(w, r, http.StatusOK, "job", uiPage{Title: "Job " + j.Name, Active: "jobs", User: u, Body: uiJobView{Job: j, Logs: logs}})
}

// uiJobOutput downloads a released output for the logged-in owner (or
// an admin), as an attachment.
func (h *Hub) uiJobOutput(w http.ResponseWriter, r *http.Request) {
	svc, a, _, ok := h.uiJobsUser(w, r)
	if !ok {
		return
	}
	o, data, err := svc.Output(r.Context(), a, r.PathValue("id"), r.PathValue("node"), r.PathValue("name"))
	if err != nil {
		h.uiJobsError(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", o.Name))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-SHA256", o.SHA256)
	w.Write(data)
}

type uiToolsView struct {
	Tools         []*jobs.Tool
	Reviews, Orgs int
	Me            string
}

func (h *Hub) uiTools(w http.ResponseWriter, r *http.Request) {
	svc, a, u, ok := h.uiJobsUser(w, r)
	if !ok {
		return
	}
	l, err := svc.Tools(r.Context())
	if err != nil {
		h.uiJobsError(w, r, err)
		return
	}
	n, o := svc.ToolRequirements()
	h.uiRender(w, r, http.StatusOK, "tools", uiPage{Title: "Tool catalogue", Active: "tools", User: u, Body: uiToolsView{Tools: l, Reviews: n, Orgs: o, Me: a.ID}})
}

func (h *Hub) uiToolReview(w http.ResponseWriter, r *http.Request) {
	svc, a, _, ok := h.uiJobsUser(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.uiMessage(w, r, http.StatusBadRequest, "Please check the form", "The form could not be read.")
		return
	}
	if _, err := svc.ReviewTool(r.Context(), a, r.PathValue("id"), r.PostForm.Get("decision"), r.PostForm.Get("comment")); err != nil {
		h.uiJobsError(w, r, err)
		return
	}
	http.Redirect(w, r, "/tools", http.StatusSeeOther)
}

package hub

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/access"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// The access pages: a researcher's requests, the admins' review, the
// representatives' decisions, threads and notifications. They call the
// same access.Service as the JSON API; forms are protected against
// cross-site posts like every form of the hub.

func (h *Hub) accessUIRoutes(route func(string, http.HandlerFunc), protect func(http.HandlerFunc) http.HandlerFunc) {
	route("GET /access", h.uiAccessList)
	route("GET /access/new", h.uiAccessNewForm)
	route("POST /access/new", protect(h.uiAccessCreate))
	route("GET /access/{id}", h.uiAccessRequest)
	route("POST /access/{id}/{action}", protect(h.uiAccessAction))
}

// uiAccessUser returns the logged-in user as access sees them and the
// service, or answers itself (login redirect, 503).
func (h *Hub) uiAccessUser(w http.ResponseWriter, r *http.Request) (*access.Service, access.Person, *User, bool) {
	u, ok := h.userOf(r)
	if !ok {
		http.Redirect(w, r, uiLoginPath(r.URL.RequestURI()), http.StatusSeeOther)
		return nil, access.Person{}, nil, false
	}
	st := h.access.Load()
	if st == nil {
		h.uiRender(w, r, http.StatusServiceUnavailable, "message", uiPage{Title: "Access requests", User: &u, Body: uiMessageData{
			Heading: "Access requests are not enabled", Text: "This hub does not take access requests. Ask its operator.", Link: "/", LinkText: "Back to the dashboard"}})
		return nil, access.Person{}, nil, false
	}
	p, err := h.store.Person(r.Context(), u.ID)
	if err != nil {
		h.uiInternalError(w, r, "access", err)
		return nil, access.Person{}, nil, false
	}
	return st.svc, toAccess(p), &u, true
}

// uiAccessError shows a service error with its status.
func (h *Hub) uiAccessError(w http.ResponseWriter, r *http.Request, u *User, err error) {
	status, heading := http.StatusInternalServerError, "Something went wrong"
	switch {
	case errors.Is(err, access.ErrNotFound):
		status, heading = http.StatusNotFound, "Not found"
	case errors.Is(err, access.ErrForbidden):
		status, heading = http.StatusForbidden, "Not allowed"
	case errors.Is(err, access.ErrConflict):
		status, heading = http.StatusConflict, "Not possible now"
	case errors.Is(err, access.ErrInvalid):
		status, heading = http.StatusBadRequest, "Please check the form"
	case errors.Is(err, access.ErrSnapshot):
		status, heading = http.StatusBadGateway, "The node made no snapshot"
	default:
		h.uiInternalError(w, r, "access", err)
		return
	}
	h.uiRender(w, r, status, "message", uiPage{Title: heading, User: u, Body: uiMessageData{
		Heading: heading, Text: err.Error(), Link: "/access", LinkText: "Back to access requests"}})
}

type uiAccessListData struct {
	Mine, Review, Decide []*access.Request
	Notifications        []access.Notification
	Admin                bool
}

func (h *Hub) uiAccessList(w http.ResponseWriter, r *http.Request) {
	svc, p, u, ok := h.uiAccessUser(w, r)
	if !ok {
		return
	}
	var d uiAccessListData
	var err error
	if d.Mine, err = svc.List(r.Context(), p, access.ListMine); err == nil {
		d.Decide, err = svc.List(r.Context(), p, access.ListDecide)
	}
	if err == nil && p.Role == RoleAdmin {
		d.Admin = true
		d.Review, err = svc.List(r.Context(), p, access.ListReview)
	}
	if err == nil {
		d.Notifications, err = svc.Notifications(r.Context(), p.ID, true)
	}
	if err != nil {
		h.uiAccessError(w, r, u, err)
		return
	}
	h.uiRender(w, r, http.StatusOK, "access", uiPage{Title: "Access requests", Active: "access", User: u, Body: d})
}

type uiAccessNewData struct {
	Query    string
	Datasets string
	DUO      []access.DUOTerm
	Ops      []permit.Op
}

func (h *Hub) uiAccessNewForm(w http.ResponseWriter, r *http.Request) {
	_, _, u, ok := h.uiAccessUser(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	d := uiAccessNewData{Query: q.Get("query"), Datasets: strings.Join(q["dataset"], "\n"), DUO: access.DUO, Ops: permit.Ops}
	if d.Query == "" {
		d.Query = `{"operand":"AND","children":[]}`
	}
	h.uiRender(w, r, http.StatusOK, "access_new", uiPage{Title: "New access request", Active: "access", User: u, Body: d})
}

func (h *Hub) uiAccessCreate(w http.ResponseWriter, r *http.Request) {
	svc, p, u, ok := h.uiAccessUser(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.uiAccessError(w, r, u, errors.Join(access.ErrInvalid, errors.New("the form is too large or malformed")))
		return
	}
	days, _ := strconv.Atoi(r.PostForm.Get("days"))
	in := access.Input{Title: r.PostForm.Get("title"), Description: r.PostForm.Get("description"), DUO: r.PostForm["duo"],
		Query: json.RawMessage(r.PostForm.Get("query")), Days: days}
	for _, op := range r.PostForm["operation"] {
		in.Operations = append(in.Operations, permit.Op(op))
	}
	for _, l := range strings.Split(r.PostForm.Get("datasets"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			node, ds, _ := strings.Cut(l, "/")
			in.Datasets = append(in.Datasets, access.Dataset{Node: strings.TrimSpace(node), Dataset: strings.TrimSpace(ds)})
		}
	}
	req, err := svc.Create(r.Context(), p, in)
	if err == nil && r.PostForm.Get("submit") != "" {
		_, err = svc.Submit(r.Context(), p, req.ID)
	}
	if err != nil {
		h.uiAccessError(w, r, u, err)
		return
	}
	http.Redirect(w, r, "/access/"+req.ID, http.StatusSeeOther)
}

type uiAccessThread struct {
	Key, Name string
	Messages  []access.Message
}

type uiAccessRequestData struct {
	R                     *access.Request
	Me                    string
	Owner, Admin          bool
	Decide                map[string]bool // node/dataset the user represents
	Threads               []uiAccessThread
	Decisions, ReviewDecs []string
}

// Can reports whether the user decides for dataset d.
func (d uiAccessRequestData) Can(node, dataset string) bool { return d.Decide[node+"/"+dataset] }

func (h *Hub) uiAccessRequest(w http.ResponseWriter, r *http.Request) {
	svc, p, u, ok := h.uiAccessUser(w, r)
	if !ok {
		return
	}
	req, err := svc.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		h.uiAccessError(w, r, u, err)
		return
	}
	msgs, err := svc.Messages(r.Context(), p, req.ID, "*")
	if err != nil {
		h.uiAccessError(w, r, u, err)
		return
	}
	d := uiAccessRequestData{R: req, Me: p.ID, Owner: req.Researcher == p.ID, Admin: p.Role == RoleAdmin, Decide: map[string]bool{},
		Decisions:  []string{access.DecideChecking, access.DecideAvailable, access.DecideUnavailable, access.DecideConditions, access.DecideApprove, access.DecideDecline},
		ReviewDecs: []string{access.ReviewApprove, access.ReviewReturn, access.ReviewDecline}}
	if d.Owner || d.Admin {
		d.Threads = append(d.Threads, uiAccessThread{Key: "", Name: "General"})
	}
	for _, ds := range req.Datasets {
		key := ds.Node + "/" + ds.Dataset
		if yes, err := h.store.Represents(r.Context(), p.ID, ds.Node, ds.Dataset); err == nil && yes {
			d.Decide[key] = true
		}
		d.Threads = append(d.Threads, uiAccessThread{Key: key, Name: key})
	}
	for i := range d.Threads {
		for _, m := range msgs {
			if m.Thread == d.Threads[i].Key {
				d.Threads[i].Messages = append(d.Threads[i].Messages, m)
			}
		}
	}
	h.uiRender(w, r, http.StatusOK, "access_request", uiPage{Title: req.Title, Active: "access", User: u, Body: d})
}

func (h *Hub) uiAccessAction(w http.ResponseWriter, r *http.Request) {
	svc, p, u, ok := h.uiAccessUser(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.uiAccessError(w, r, u, errors.Join(access.ErrInvalid, errors.New("the form is too large or malformed")))
		return
	}
	id, f := r.PathValue("id"), r.PostForm
	node, ds, _ := strings.Cut(f.Get("dataset"), "/")
	var err error
	switch r.PathValue("action") {
	case "submit":
		_, err = svc.Submit(r.Context(), p, id)
	case "review":
		_, err = svc.Review(r.Context(), p, id, f.Get("decision"), f.Get("message"))
	case "decide":
		_, err = svc.Decide(r.Context(), p, id, node, ds, f.Get("decision"), f.Get("message"))
	case "accept":
		_, err = svc.AcceptConditions(r.Context(), p, id, node, ds)
	case "message":
		_, err = svc.Post(r.Context(), p, id, f.Get("thread"), f.Get("body"))
	case "revoke":
		err = svc.Revoke(r.Context(), p, f.Get("permit"))
	case "read":
		n, perr := strconv.ParseInt(f.Get("notification"), 10, 64)
		if perr != nil {
			err = errors.Join(access.ErrInvalid, errors.New("notification ids are numbers"))
		} else {
			err = svc.MarkRead(r.Context(), p.ID, n)
		}
		if err == nil {
			http.Redirect(w, r, "/access", http.StatusSeeOther)
			return
		}
	default:
		h.uiNotFound(w, r)
		return
	}
	if err != nil {
		h.uiAccessError(w, r, u, err)
		return
	}
	http.Redirect(w, r, "/access/"+id, http.StatusSeeOther)
}

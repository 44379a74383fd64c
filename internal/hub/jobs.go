package hub

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/access"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/jobs"
)

// Jobs at the data (package jobs) run on the hub's database, reach the
// nodes through Ask, and write to the hub's audit log. Nodes report on
// fed.MsgJob, signed.

// jobsState is what enableJobs set up.
type jobsState struct {
	svc *jobs.Service
	api http.Handler
}

// jobWait bounds how long the hub waits for a node's acknowledgement of
// a job or a cancellation.
const jobWait = 30 * time.Second

// enableJobs starts the jobs service and the tool catalogue.
func (h *Hub) enableJobs() error {
	pc := h.cfg.Processing
	svc, err := jobs.New(jobs.Config{
		DB:     h.store.db,
		Permit: h.jobPermit,
		Send: func(ctx context.Context, node string, kind fed.TaskKind, body any, ack *fed.JobAck) error {
			_, err := h.Ask(ctx, node, kind, body, jobWait, ack)
			return err
		},
		Organisation:      h.Organisation,
		Audit:             h.record,
		ToolReviews:       pc.ToolReviews,
		ToolOrganisations: pc.ToolOrganisations,
		Now:               h.store.now,
		Log:               h.log,
	})
	if err != nil {
		return err
	}
	h.jobs.Store(&jobsState{svc: svc, api: svc.Handler(h.jobsActor)})
	return nil
}

// Jobs returns the hub's jobs service (nil before Open finished).
func (h *Hub) Jobs() *jobs.Service {
	if st := h.jobs.Load(); st != nil {
		return st.svc
	}
	return nil
}

// jobPermit finds a researcher's permit in the access service.
func (h *Hub) jobPermit(ctx context.Context, id, user string) (jobs.Permit, error) {
	st := h.access.Load()
	if st == nil {
		return jobs.Permit{}, errors.New("access requests are not enabled on this hub")
	}
	p, err := st.svc.Permit(ctx, id, user)
	if err != nil {
		return jobs.Permit{}, err
	}
	return permitOf(p), nil
}

func permitOf(p access.PermitRecord) jobs.Permit {
	return jobs.Permit{ID: p.ID, Researcher: p.Researcher, Node: p.Node, Dataset: p.Dataset, Snapshot: p.Snapshot,
		Operations: p.Operations, Expires: p.Expires, Token: p.Token, Revoked: p.RevokedAt != nil}
}

// jobsActor authenticates an API call by bearer token.
func (h *Hub) jobsActor(r *http.Request) (jobs.Actor, bool) {
	if a := r.Header.Get("Authorization"); a == "" || !strings.HasPrefix(strings.ToLower(a), "bearer ") {
		return jobs.Actor{}, false
	}
	u, ok := h.userOf(r)
	if !ok {
		return jobs.Actor{}, false
	}
	return jobs.Actor{ID: u.ID, Admin: u.Role == RoleAdmin}, true
}

// jobRoutes mounts the jobs API and pages.
func (h *Hub) jobRoutes(route func(string, http.HandlerFunc)) {
	serve := func(w http.ResponseWriter, r *http.Request) {
		st := h.jobs.Load()
		if st == nil {
			apiError(w, http.StatusServiceUnavailable, "jobs are not enabled on this hub")
			return
		}
		st.api.ServeHTTP(w, r)
	}
	for _, p := range []string{"/api/v1/jobs", "/api/v1/jobs/", "/api/v1/tools", "/api/v1/tools/"} {
		for _, m := range []string{"GET", "POST", "DELETE"} {
			route(m+" "+p, serve)
		}
	}
	h.jobPages(route)
}

// onJobEvent takes a node's signed JobEvent.
func (h *Hub) onJobEvent(node string, data []byte) {
	var ev fed.JobEvent
	if !h.verifyFrom(node, data, &ev) {
		return
	}
	if ev.Node != node {
		h.log.Warn("job event refused: names another node", "node", node)
		return
	}
	svc := h.Jobs()
	if svc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Event(ctx, ev); err != nil {
		h.log.Warn("job event not taken", "node", node, "job", ev.Job, "seq", ev.Seq, "err", err)
	}
}

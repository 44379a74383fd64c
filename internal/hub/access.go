package hub

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/access"
)

// Access requests (package access) run on the hub's database, sign
// permits with the hub's key and write to the hub's audit log. The hub
// gives them its users (accessDirectory) and its catalogue, and serves
// their JSON API for bearer tokens.

// accessDirectory is the hub's users as access.Directory.
type accessDirectory struct{ s *store }

func toAccess(p Person) access.Person {
	return access.Person{ID: p.ID, Role: p.Role, Email: p.Email, Name: p.Name}
}

func toAccessAll(ps []Person, err error) ([]access.Person, error) {
	if err != nil {
		return nil, err
	}
	out := make([]access.Person, len(ps))
	for i, p := range ps {
		out[i] = toAccess(p)
	}
	return out, nil
}

func (d accessDirectory) Person(ctx context.Context, id string) (access.Person, error) {
	p, err := d.s.Person(ctx, id)
	return toAccess(p), err
}

func (d accessDirectory) Represents(ctx context.Context, user, node, dataset string) (bool, error) {
	return d.s.Represents(ctx, user, node, dataset)
}

func (d accessDirectory) Representatives(ctx context.Context, node, dataset string) ([]access.Person, error) {
	return toAccessAll(d.s.Representatives(ctx, node, dataset))
}

func (d accessDirectory) Admins(ctx context.Context) ([]access.Person, error) {
	return toAccessAll(d.s.Admins(ctx))
}

// AccessDirectory returns the hub's users as access requests see them.
func (h *Hub) AccessDirectory() access.Directory { return accessDirectory{h.store} }

// EnableAccess starts access requests on the hub: their state in the
// hub's database, permits signed with the hub's key, every change in the
// hub's audit log, datasets checked against the catalogue. granter and
// pub reach the nodes (the hub itself implements them); mail may be nil.
// Call it before serving: Handler then serves the API under
// /api/v1/access-requests, /api/v1/permits/, /api/v1/snapshots/ and
// /api/v1/notifications, and the web pages under /access. The service's
// Tick runs every minute in RunAccessReminders.
func (h *Hub) EnableAccess(cfg access.Config, granter access.Granter, pub access.Publisher, mail access.Mailer) (*access.Service, error) {
	if cfg.DatasetExists == nil {
		cfg.DatasetExists = func(ctx context.Context, node, dataset string) bool {
			_, ok, err := h.findDataset(ctx, node, dataset)
			return err == nil && ok
		}
	}
	if cfg.Log == nil {
		cfg.Log = h.log
	}
	if cfg.HubURL == "" {
		cfg.HubURL = h.cfg.PublicURL
	}
	svc, err := access.New(h.store.db, cfg, h.AccessDirectory(), granter, pub, mail, h.key, h.record, h.store.now)
	if err != nil {
		return nil, err
	}
	h.access.Store(&accessState{svc: svc, api: svc.Handler(h.accessUser)})
	h.wireAccess(svc)
	return svc, nil
}

// accessState is what EnableAccess set up.
type accessState struct {
	svc *access.Service
	api http.Handler
}

// accessRoutes mounts the access API; until EnableAccess it answers 503.
func (h *Hub) accessRoutes(route func(string, http.HandlerFunc)) {
	serve := func(w http.ResponseWriter, r *http.Request) {
		st := h.access.Load()
		if st == nil {
			apiError(w, http.StatusServiceUnavailable, "access requests are not enabled on this hub")
			return
		}
		st.api.ServeHTTP(w, r)
	}
	for _, p := range []string{"/api/v1/access-requests", "/api/v1/access-requests/", "/api/v1/permits/", "/api/v1/snapshots/",
		"/api/v1/notifications", "/api/v1/notifications/"} {
		// With methods: the web pages' "GET /" is more general.
		for _, m := range []string{"GET", "POST", "PATCH"} {
			route(m+" "+p, serve)
		}
	}
}

// accessUser authenticates an API call by bearer token only (as
// requireUser does: the session cookie is for the web pages).
func (h *Hub) accessUser(r *http.Request) (access.Person, bool) {
	if a := r.Header.Get("Authorization"); a == "" || !strings.HasPrefix(strings.ToLower(a), "bearer ") {
		return access.Person{}, false
	}
	u, ok := h.userOf(r)
	if !ok {
		return access.Person{}, false
	}
	p, err := h.store.Person(r.Context(), u.ID)
	if err != nil {
		return access.Person{}, false
	}
	return toAccess(p), true
}

// accessTick is how often the hub looks for representatives to remind.
const accessTick = time.Minute

// RunAccessReminders calls the access service's Tick (reminders to
// representatives, escalation to admins) every minute until ctx ends.
// The hub runs it with its background work from Open; it returns at
// once when access requests are not enabled.
func (h *Hub) RunAccessReminders(ctx context.Context) error {
	return h.runAccessReminders(ctx, accessTick)
}

// runAccessReminders is RunAccessReminders ticking every interval
// (tests shorten it).
func (h *Hub) runAccessReminders(ctx context.Context, every time.Duration) error {
	st := h.access.Load()
	if st == nil {
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := st.svc.Tick(ctx); err != nil && ctx.Err() == nil {
				h.log.Error("access reminders failed", "err", err)
			}
		}
	}
}

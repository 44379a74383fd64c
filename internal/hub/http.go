package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/httpx"
	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
)

// Handler returns the hub's HTTP interface: the public catalogue, the
// API for researchers and admins, node enrolment, the web pages, and
// /healthz, /readyz and /metrics.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, fn http.HandlerFunc) {
		mux.Handle(pattern, h.instrument(pattern, fn))
	}
	route("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	route("GET /readyz", h.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.m.reg, promhttp.HandlerOpts{}))

	route("POST "+fed.PathEnroll, h.enroll)
	route("GET "+fed.PathNATSInfo, h.natsInfo)
	route("POST /api/v1/login", h.apiLogin)
	route("POST /api/v1/search", h.requireUser(h.apiSearch))
	route("GET /api/v1/datasets", h.apiDatasets)
	route("GET /api/v1/datasets/{node}/{dataset}", h.apiDataset)
	route("GET /api/v1/nodes", h.requireAdmin(h.apiNodes))
	route("DELETE /api/v1/nodes/{node}", h.requireAdmin(h.apiRemoveNode))
	// GET patterns also serve HEAD; other methods get 405.
	route("GET "+relayPrefix+"{permit}/{path...}", h.relay)
	h.catalogueRoutes(route)
	h.oidcRoutes(route)
	h.accessRoutes(route)
	h.jobRoutes(route)
	h.computeRoutes(route)
	h.viewerRoutes(mux)
	h.uiRoutes(route)
	return mux
}

func (h *Hub) instrument(route string, next http.Handler) http.Handler {
	return httpx.Instrument(route, h.log, h.m.httpSeconds, next)
}

func apiError(w http.ResponseWriter, status int, msg string) { httpx.Error(w, status, msg) }

func writeJSON(w http.ResponseWriter, status int, v any) { httpx.JSON(w, status, v) }

func (h *Hub) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.store.db.PingContext(ctx); err != nil {
		apiError(w, http.StatusServiceUnavailable, "state database not reachable")
		return
	}
	if !h.nc.IsConnected() {
		apiError(w, http.StatusServiceUnavailable, "NATS not connected")
		return
	}
	w.Write([]byte("ready\n"))
}

type ctxKey int

const userKey ctxKey = 0

// sessionCookie names the browser session cookie.
const sessionCookie = "mosaic_session"

// userOf authenticates a request by bearer token or session cookie.
func (h *Hub) userOf(r *http.Request) (User, bool) {
	u, err := h.authenticate(r)
	return u, err == nil
}

// authenticate finds a request's user: a bearer token (a hub API token
// or session, or a JWT of the hub's OpenID provider), else the session
// cookie, refreshed at the provider when it came from a provider's
// log-in whose access token expired. The error says why a token was
// refused.
func (h *Hub) authenticate(r *http.Request) (User, error) {
	secret, bearer := "", false
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, v, ok := strings.Cut(a, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			secret, bearer = strings.TrimSpace(v), true
		}
	} else if c, err := r.Cookie(sessionCookie); err == nil {
		secret = c.Value
	}
	if secret == "" {
		return User{}, ErrAuth
	}
	if bearer && oidc.LooksLikeJWT(secret) {
		return h.bearerUser(r.Context(), secret)
	}
	u, err := h.store.Authenticate(r.Context(), secret)
	if err != nil {
		return User{}, err
	}
	return h.refreshIfDue(r.Context(), secret, u)
}

// requireUser authenticates API requests by bearer token only: the
// browser's session cookie is for the web pages, whose forms are
// protected against cross-site posts, so a page on another host of the
// same site cannot spend a user's queries through the API.
func (h *Hub) requireUser(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := User{}, ErrAuth
		if a := r.Header.Get("Authorization"); a != "" {
			u, err = h.authenticate(r)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mosaic-hub"`)
			msg := "log in first: Authorization: Bearer TOKEN (mosaic login, mosaic hub token create) or a session"
			switch {
			case errors.Is(err, oidc.ErrToken):
				msg = "bearer token refused: " + strings.TrimPrefix(err.Error(), oidc.ErrToken.Error()+": ")
			case errors.Is(err, oidc.ErrNoRole):
				apiError(w, http.StatusForbidden, "the provider's claims give this account no role at this hub")
				return
			case errors.Is(err, ErrExists):
				apiError(w, http.StatusForbidden, "a hub account of another origin has this token's user name")
				return
			case errors.Is(err, ErrAudit):
				apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log: try again later")
				return
			case !errors.Is(err, ErrAuth):
				h.log.Warn("bearer token not checked", "err", err)
				msg = "the token could not be checked: the hub cannot reach its OpenID provider"
			}
			apiError(w, http.StatusUnauthorized, msg)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
	}
}

func (h *Hub) requireAdmin(next http.HandlerFunc) http.HandlerFunc {
	return h.requireUser(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(userKey).(User).Role != RoleAdmin {
			apiError(w, http.StatusForbidden, "administrators only")
			return
		}
		next(w, r)
	})
}

func (h *Hub) enroll(w http.ResponseWriter, r *http.Request) {
	src := sourceOf(r.RemoteAddr)
	if ok, retry := h.enrol.take(src); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		apiError(w, http.StatusTooManyRequests, "too many enrolment attempts from this address: try again later")
		return
	}
	var req fed.EnrollRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "bad enrolment request: "+err.Error())
		return
	}
	if _, err := fed.DecodeKey(req.PublicKey); err != nil {
		apiError(w, http.StatusBadRequest, "bad enrolment request: public_key is not an Ed25519 key")
		return
	}
	pass := fed.NewID() + fed.NewID()
	id, err := h.store.Enroll(r.Context(), req.Token, req.PublicKey, pass, req.Version, func(id string) error {
		return h.record("node:"+id, "enroll", id, map[string]any{"version": req.Version})
	})
	if errors.Is(err, ErrAudit) {
		// The enrolment was rolled back: the token still works.
		apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log, so it enrols no node: try again later, or tell the hub's operator")
		return
	}
	if err != nil {
		if h.enrol.refused(src) {
			h.log.Warn("enrolment refused", "remote", src)
			h.note("anonymous", "enroll-refused", "", map[string]any{"remote": src, "count": 1})
		}
		apiError(w, http.StatusUnauthorized, "the enrolment token is unknown, used or expired: ask the hub's operator for a new one (mosaic hub node add)")
		return
	}
	h.enrol.succeeded(src)
	h.forgetKey(id)
	h.log.Info("node enrolled", "node", id)
	writeJSON(w, http.StatusOK, fed.EnrollResponse{Node: id, NATSURLs: h.natsURLs(), NATSUser: id, NATSPassword: pass,
		HubKey: fed.EncodeKey(h.pub), HubURL: h.cfg.PublicURL, NATSCA: h.NATSCA()})
}

func (h *Hub) natsURLs() []string {
	urls := []string{h.NATSURL()}
	if ws := h.NATSWebSocketURL(); ws != "" {
		urls = append(urls, ws)
	}
	return urls
}

// natsNonce is what a node may send as the nonce of GET /api/v1/nats.
var natsNonce = regexp.MustCompile(`^[0-9a-f]{16,64}$`)

// natsInfo tells how to reach the NATS server, signed with the hub's
// key, so that nodes enrolled before the hub had TLS (or before it
// changed certificates) fetch the addresses and the certificates to pin
// again. Nothing in it is secret; the nonce keeps an old answer from
// being replayed.
func (h *Hub) natsInfo(w http.ResponseWriter, r *http.Request) {
	nonce := r.URL.Query().Get("nonce")
	if !natsNonce.MatchString(nonce) {
		apiError(w, http.StatusBadRequest, "nonce: 16 to 64 lowercase hexadecimal digits")
		return
	}
	msg, err := fed.Seal(h.key, fed.SignerHub, fed.NATSInfo{Purpose: fed.PurposeNATSInfo, Nonce: nonce, Time: time.Now().UTC(),
		NATSURLs: h.natsURLs(), NATSCA: h.NATSCA()})
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(msg)
}

func (h *Hub) apiLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "send {\"user\": ..., \"password\": ...}")
		return
	}
	if h.cfg.NoLocalLogin {
		apiError(w, http.StatusForbidden, "this hub takes no passwords: log in with mosaic login, or present the OpenID provider's token")
		return
	}
	u, err := h.Login(r.Context(), req.User, req.Password, r.RemoteAddr, "api")
	var te *ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
		apiError(w, http.StatusTooManyRequests, fmt.Sprintf("too many failed log-ins for this account or from this address: try again in %d s (the password was not checked)", te.Seconds()))
		return
	}
	if errors.Is(err, ErrAudit) {
		apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log, so it lets no one log in: try again later, or tell the hub's operator")
		return
	}
	if err != nil {
		apiError(w, http.StatusUnauthorized, "wrong user name or password")
		return
	}
	tok, err := h.store.NewSession(r.Context(), u.ID, KindSession, "api login", 12*time.Hour, nil)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "user": u, "expires_in": 12 * 3600})
}

func (h *Hub) apiSearch(w http.ResponseWriter, r *http.Request) {
	u := r.Context().Value(userKey).(User)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(lens.DefaultLimits.MaxBytes)))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, "query too large")
		return
	}
	// The API takes Lens JSON; the hub works on the parsed query.
	q, err := lens.Parse(body)
	if err != nil {
		h.m.searches.WithLabelValues("invalid").Inc()
		apiError(w, http.StatusBadRequest, "bad query: "+err.Error())
		return
	}
	res, err := h.Search(r.Context(), u, q)
	if err != nil {
		switch {
		case errors.Is(err, ErrQuota):
			apiError(w, http.StatusTooManyRequests, err.Error())
		case errors.Is(err, ErrAudit):
			apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log, so it runs no search: try again later, or tell the hub's operator")
		default:
			h.log.Error("search failed", "err", err)
			apiError(w, http.StatusInternalServerError, "search failed")
		}
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// CatalogueEntry is one dataset as the public catalogue API lists it.
type CatalogueEntry struct {
	Node      string    `json:"node"`
	NodeTitle string    `json:"node_title"`
	Published time.Time `json:"published"`
	fed.DatasetSummary
}

// filterCatalogue applies free text and facet filters.
func filterCatalogue(entries []Entry, r *http.Request) []CatalogueEntry {
	q := r.URL.Query()
	text := strings.ToLower(strings.TrimSpace(q.Get("q")))
	has := func(list []string, want string) bool {
		for _, v := range list {
			if strings.EqualFold(v, want) {
				return true
			}
		}
		return false
	}
	out := []CatalogueEntry{}
	for _, e := range entries {
		d := e.Dataset
		if text != "" && !strings.Contains(strings.ToLower(d.Title+" "+d.Description+" "+e.Node+" "+e.NodeTitle+" "+strings.Join(d.Conditions, " ")), text) {
			continue
		}
		ok := true
		for facet, list := range map[string][]string{"modality": d.Modalities, "body_part": d.BodyParts, "condition": d.Conditions, "manufacturer": d.Manufacturers, "sex": d.Sexes} {
			for _, want := range q[facet] {
				if want != "" && !has(list, want) {
					ok = false
				}
			}
		}
		if v := q.Get("node"); v != "" && v != e.Node {
			ok = false
		}
		if v := q.Get("tier"); v != "" && v != strconv.Itoa(d.Tier) {
			ok = false
		}
		if v := q.Get("access_rights"); v != "" && !strings.EqualFold(v, d.AccessRights) {
			ok = false
		}
		if ok {
			out = append(out, CatalogueEntry{Node: e.Node, NodeTitle: e.NodeTitle, Published: e.Published, DatasetSummary: d})
		}
	}
	return out
}

// facets counts the values of each facet over entries.
func facets(entries []CatalogueEntry) map[string]map[string]int {
	f := map[string]map[string]int{"modality": {}, "body_part": {}, "condition": {}, "manufacturer": {}, "sex": {}, "node": {}, "tier": {}}
	for _, e := range entries {
		for facet, list := range map[string][]string{"modality": e.Modalities, "body_part": e.BodyParts, "condition": e.Conditions, "manufacturer": e.Manufacturers, "sex": e.Sexes} {
			for _, v := range list {
				f[facet][v]++
			}
		}
		f["node"][e.Node]++
		f["tier"][strconv.Itoa(e.Tier)]++
	}
	return f
}

func (h *Hub) apiDatasets(w http.ResponseWriter, r *http.Request) {
	entries, err := h.store.Catalogue(r.Context())
	if err != nil {
		h.log.Error("catalogue", "err", err)
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	out := filterCatalogue(entries, r)
	writeJSON(w, http.StatusOK, map[string]any{"datasets": out, "total": len(out), "facets": facets(out)})
}

func (h *Hub) findDataset(ctx context.Context, node, id string) (CatalogueEntry, bool, error) {
	entries, err := h.store.Catalogue(ctx)
	if err != nil {
		return CatalogueEntry{}, false, err
	}
	for _, e := range entries {
		if e.Node == node && e.Dataset.ID == id {
			return CatalogueEntry{Node: e.Node, NodeTitle: e.NodeTitle, Published: e.Published, DatasetSummary: e.Dataset}, true, nil
		}
	}
	return CatalogueEntry{}, false, nil
}

func (h *Hub) apiDataset(w http.ResponseWriter, r *http.Request) {
	e, ok, err := h.findDataset(r.Context(), r.PathValue("node"), r.PathValue("dataset"))
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if !ok {
		apiError(w, http.StatusNotFound, "no such dataset in the catalogue")
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// NodeInfo is a node as admins see it.
type NodeInfo struct {
	Node
	Status   string `json:"status"` // online, offline, pending (not enrolled), removed
	Datasets int    `json:"datasets"`
}

// NodeInfos lists the nodes with their live status.
func (h *Hub) NodeInfos(ctx context.Context) ([]NodeInfo, error) {
	nodes, err := h.store.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	online := h.online()
	out := []NodeInfo{}
	for _, n := range nodes {
		ni := NodeInfo{Node: n, Status: "offline"}
		switch hb, ok := online[n.ID]; {
		case n.Removed != nil:
			ni.Status = "removed"
		case n.Enrolled == nil:
			ni.Status = "pending"
		case ok:
			ni.Status, ni.Datasets, ni.Version = "online", hb.Datasets, hb.Version
		}
		out = append(out, ni)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (h *Hub) apiNodes(w http.ResponseWriter, r *http.Request) {
	out, err := h.NodeInfos(r.Context())
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out})
}

func (h *Hub) apiRemoveNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("node")
	if err := h.RemoveNode(r.Context(), id); err != nil {
		if errors.Is(err, ErrNotFound) {
			apiError(w, http.StatusNotFound, err.Error())
			return
		}
		if errors.Is(err, ErrAudit) {
			apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log, so it removes no node: try again later")
			return
		}
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RemoveNode removes a node and cuts its connection at once; the removal
// is made only when its audit record is written.
func (h *Hub) RemoveNode(ctx context.Context, id string) error {
	if err := h.store.RemoveNode(ctx, id, h.recorder("hub", "node-removed", id, nil)); err != nil {
		return err
	}
	h.mu.Lock()
	for cid, nid := range h.clients {
		if nid == id && h.ns != nil {
			h.ns.DisconnectClientByID(cid)
			delete(h.clients, cid)
		}
	}
	delete(h.live, id)
	delete(h.keys, id)
	h.mu.Unlock()
	h.log.Info("node removed", "node", id)
	return nil
}

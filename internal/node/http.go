package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mosaic-imaging/mosaic/internal/disclosure"
	"github.com/mosaic-imaging/mosaic/internal/httpx"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// Handler returns the node's HTTP interface: the node API under /api/v1,
// DICOMweb under /dicom-web/{dataset}/, and /healthz, /readyz and
// /metrics. Everything but the last three needs a token whose scope
// allows the request (see index.Token.Allows).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	// route registers a handler; scope is what a token needs ("" for
	// none), on the dataset of the path when it names one.
	route := func(pattern string, h http.HandlerFunc, scope string) {
		var hh http.Handler = h
		if scope != "" {
			hh = n.requireToken(pattern, scope, h)
		}
		mux.Handle(pattern, n.instrument(pattern, hh))
	}
	route("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) }, "")
	route("GET /readyz", n.ready, "")
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.m.reg, promhttp.HandlerOpts{}))

	route("GET /api/v1/datasets", n.listDatasets, index.ScopeRead)
	route("POST /api/v1/datasets", n.createDataset, index.ScopeAdmin)
	route("GET /api/v1/datasets/{dataset}", n.getDataset, index.ScopeRead)
	route("PATCH /api/v1/datasets/{dataset}", n.patchDataset, index.ScopeAdmin)
	route("DELETE /api/v1/datasets/{dataset}", n.deleteDataset, index.ScopeAdmin)
	route("GET /api/v1/disclosure", n.getDisclosure, index.ScopeAdmin)

	route("GET /api/v1/tokens", n.listTokens, index.ScopeAdmin)
	route("POST /api/v1/tokens", n.createToken, index.ScopeAdmin)
	route("DELETE /api/v1/tokens/{id}", n.revokeToken, index.ScopeAdmin)

	n.dicomwebRoutes(route)
	n.tableRoutes(route)
	n.airlockRoutes(route)
	n.jobRoutes(route)
	route("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "no such resource: "+r.Method+" "+r.URL.Path)
	}, "")
	return mux
}

func (n *Node) instrument(route string, h http.Handler) http.Handler {
	return httpx.Instrument(route, n.log, n.m.httpSeconds, h)
}

type ctxKey int

const tokenKey ctxKey = 0

// tokenOf is the token a request was authenticated with.
func tokenOf(r *http.Request) index.Token {
	t, _ := r.Context().Value(tokenKey).(index.Token)
	return t
}

// requireToken lets a request through only with a token whose scope
// allows scope on the dataset the path names (if any); route is the
// route's pattern, for the error.
func (n *Node) requireToken(route, scope string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, secret, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mosaic-node"`)
			apiError(w, http.StatusUnauthorized, "a token is required: Authorization: Bearer TOKEN (mosaic node token create)")
			return
		}
		ctx, cancel := n.dbContext(r.Context())
		tok, err := n.ix.CheckToken(ctx, strings.TrimSpace(secret))
		cancel()
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mosaic-node", error="invalid_token"`)
			if errors.Is(err, index.ErrBadToken) {
				apiError(w, http.StatusUnauthorized, "invalid or revoked token")
			} else {
				n.log.Error("token check failed", "err", err)
				msg := "cannot check the token now"
				if errors.Is(err, context.DeadlineExceeded) {
					msg += fmt.Sprintf(": the node's index database did not answer within %s", n.cfg.CommitTimeout)
				}
				w.Header().Set("Retry-After", "30")
				apiError(w, http.StatusServiceUnavailable, msg)
			}
			return
		}
		n.touchToken(r.Context(), tok.ID)
		if dataset := r.PathValue("dataset"); !tok.Allows(scope, dataset) {
			forbidden(w, tok, route, scope, dataset)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey, tok)))
	})
}

// forbidden answers 403 saying what the token lacks, in words and in
// fields a client can test.
func forbidden(w http.ResponseWriter, tok index.Token, route, scope, dataset string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="mosaic-node", error="insufficient_scope", scope="`+scope+`"`)
	var msg string
	switch {
	case tok.Dataset != "" && dataset != "" && dataset != tok.Dataset:
		other := "another dataset" // what is not a dataset id is not echoed
		if index.ValidDatasetID(dataset) {
			other = "dataset " + dataset
		}
		msg = fmt.Sprintf("this token is for dataset %s only; it cannot be used on %s", tok.Dataset, other)
	case tok.Dataset != "" && dataset == "":
		msg = fmt.Sprintf("this token is for dataset %s only; %s needs a token for all datasets with scope %s", tok.Dataset, route, scope)
	default:
		msg = fmt.Sprintf("this token's scope is %s; %s needs scope %s", tok.Scope, route, scope)
	}
	body := map[string]any{"error": msg, "required_scope": scope, "token_scope": tok.Scope}
	if tok.Dataset != "" {
		body["token_dataset"] = tok.Dataset
	}
	writeJSON(w, http.StatusForbidden, body)
}

// touchToken records a token's use, at most once a minute from this
// process, without holding up the request: recording is an index write,
// which on SQLite waits for the ingest commit in progress. A failed write
// is tried again by the next request.
func (n *Node) touchToken(ctx context.Context, id string) {
	now := time.Now()
	if last, ok := n.touched.Load(id); ok && now.Sub(last.(time.Time)) < time.Minute {
		return
	}
	n.touched.Store(id, now)
	ctx = context.WithoutCancel(ctx)
	n.touches.Go(func() {
		ctx, cancel := n.dbContext(ctx)
		defer cancel()
		if err := n.ix.TouchToken(ctx, id); err != nil {
			n.touched.Delete(id)
		}
	})
}

func (n *Node) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := n.ix.Ping(ctx); err != nil {
		apiError(w, http.StatusServiceUnavailable, "index not reachable")
		return
	}
	if s, ok := n.blobs.(interface{ Err() error }); ok && s.Err() != nil {
		// A failed flush: nothing can be acknowledged until a restart.
		apiError(w, http.StatusServiceUnavailable, "the blob store could not flush to disk; check the disk, then restart the node")
		return
	}
	w.Write([]byte("ready\n"))
}

func apiError(w http.ResponseWriter, status int, msg string) { httpx.Error(w, status, msg) }

func writeJSON(w http.ResponseWriter, status int, v any) { httpx.JSON(w, status, v) }

// storeError maps index errors to HTTP statuses.
func (n *Node) storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, index.ErrNotFound):
		apiError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, index.ErrExists):
		apiError(w, http.StatusConflict, err.Error())
	case errors.Is(err, index.ErrInvalid):
		apiError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		n.log.Error("store error", "err", err)
		w.Header().Set("Retry-After", "30")
		apiError(w, http.StatusServiceUnavailable, fmt.Sprintf("the node's index database did not answer within %s; try again later", n.cfg.CommitTimeout))
	default:
		n.log.Error("store error", "err", err)
		apiError(w, http.StatusInternalServerError, "internal error")
	}
}

// DatasetInfo is a dataset with what it holds and whether the node
// publishes it to its hub.
type DatasetInfo struct {
	index.Dataset
	Patients  int64 `json:"patients"`
	Studies   int64 `json:"studies"`
	Series    int64 `json:"series"`
	Instances int64 `json:"instances"`
	Bytes     int64 `json:"bytes"`
	Publication
}

func (n *Node) datasetInfo(ctx context.Context, d index.Dataset) (DatasetInfo, error) {
	c, err := n.ix.DatasetCounts(ctx, d.ID)
	if err != nil {
		return DatasetInfo{}, err
	}
	pub, err := n.Publication(ctx, d)
	return DatasetInfo{Dataset: d, Patients: c.Patients, Studies: c.Studies, Series: c.Series, Instances: c.Instances, Bytes: c.Bytes, Publication: pub}, err
}

func (n *Node) listDatasets(w http.ResponseWriter, r *http.Request) {
	ds, err := n.ix.Datasets(r.Context())
	if err != nil {
		n.storeError(w, err)
		return
	}
	tok := tokenOf(r)
	out := []DatasetInfo{}
	for _, d := range ds {
		if !tok.Allows(index.ScopeRead, d.ID) {
			continue
		}
		info, err := n.datasetInfo(r.Context(), d)
		if err != nil {
			n.storeError(w, err)
			return
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"datasets": out})
}

func (n *Node) getDataset(w http.ResponseWriter, r *http.Request) {
	d, err := n.ix.Dataset(r.Context(), r.PathValue("dataset"))
	if err != nil {
		n.storeError(w, err)
		return
	}
	info, err := n.datasetInfo(r.Context(), d)
	if err != nil {
		n.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// datasetFields are the editable fields, each optional in a PATCH.
type datasetFields struct {
	ID           *string `json:"id"`
	Title        *string `json:"title"`
	Description  *string `json:"description"`
	Licence      *string `json:"licence"`
	Contact      *string `json:"contact"`
	AccessRights *string `json:"access_rights"`
	Tier         *int    `json:"tier"`
}

func (f *datasetFields) apply(d *index.Dataset) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&d.Title, f.Title)
	set(&d.Description, f.Description)
	set(&d.Licence, f.Licence)
	set(&d.Contact, f.Contact)
	set(&d.AccessRights, f.AccessRights)
	if f.Tier != nil {
		d.Tier = *f.Tier
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		apiError(w, http.StatusUnsupportedMediaType, "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func (n *Node) createDataset(w http.ResponseWriter, r *http.Request) {
	var f datasetFields
	if !decodeBody(w, r, &f) {
		return
	}
	var d index.Dataset
	if f.ID != nil {
		d.ID = *f.ID
	}
	f.apply(&d)
	d, err := n.ix.CreateDataset(r.Context(), d)
	if err != nil {
		n.storeError(w, err)
		return
	}
	n.log.Info("dataset created", "dataset", d.ID)
	writeJSON(w, http.StatusCreated, DatasetInfo{Dataset: d, Publication: gate(describeProblems(d))})
}

func (n *Node) patchDataset(w http.ResponseWriter, r *http.Request) {
	var f datasetFields
	if !decodeBody(w, r, &f) {
		return
	}
	if f.ID != nil && *f.ID != r.PathValue("dataset") {
		apiError(w, http.StatusBadRequest, "a dataset's id cannot be changed")
		return
	}
	d, err := n.ix.UpdateDataset(r.Context(), r.PathValue("dataset"), func(d *index.Dataset) error {
		f.apply(d)
		return nil
	})
	if err != nil {
		n.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (n *Node) deleteDataset(w http.ResponseWriter, r *http.Request) {
	if err := n.ix.DeleteDataset(r.Context(), r.PathValue("dataset")); err != nil {
		n.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getDisclosure shows the node's disclosure control to its admins: the
// settings in force and the attack patterns seen since the node started
// (the audit log keeps them all).
func (n *Node) getDisclosure(w http.ResponseWriter, r *http.Request) {
	p, s := n.ctl.Policy(), n.ctl.Settings()
	alerts := n.ctl.Alerts()
	if alerts == nil {
		alerts = []disclosure.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"floor": p.Floor, "round": p.Round, "noise": p.Noise, "overlap_control": !s.NoOverlap,
		"epsilon_per_answer": s.Epsilon, "daily_epsilon": s.DailyEpsilon, "total_epsilon": s.TotalEpsilon,
		"alerts": alerts,
	})
}

// CreatedToken is the answer to POST /api/v1/tokens: the token's secret
// (shown once) and what it may do.
type CreatedToken struct {
	Secret string `json:"token"`
	index.Token
}

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name    string `json:"name"`
	Scope   string `json:"scope"`
	Dataset string `json:"dataset"`
}

func (n *Node) createToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Scope == "" {
		apiError(w, http.StatusBadRequest, `say what the token may do: "scope": "read", "write" or "admin"`)
		return
	}
	secret, t, err := n.ix.CreateToken(r.Context(), req.Name, req.Scope, req.Dataset)
	if err != nil {
		n.storeError(w, err)
		return
	}
	n.log.Info("token created", "token", t.ID, "scope", t.Scope, "dataset", t.Dataset, "by", tokenOf(r).ID)
	writeJSON(w, http.StatusCreated, CreatedToken{Secret: secret, Token: t})
}

func (n *Node) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := n.ix.Tokens(r.Context())
	if err != nil {
		n.storeError(w, err)
		return
	}
	if ts == nil {
		ts = []index.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (n *Node) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := n.ix.RevokeToken(r.Context(), r.PathValue("id")); err != nil {
		n.storeError(w, err)
		return
	}
	n.log.Info("token revoked", "token", r.PathValue("id"), "by", tokenOf(r).ID)
	w.WriteHeader(http.StatusNoContent)
}

package hub

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/compute"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/fl"
)

// Federated computations (package compute) run from the hub: analyses
// and validations answer at once, learning runs go on in the background
// and are followed by their id. Every computation and each of its steps
// is in the hub's audit log; nodes check the researcher's process permit
// on every step.

// Audit actions of computations.
const (
	actionAnalysis   = "compute-analysis"
	actionLearning   = "compute-learning"
	actionValidation = "compute-validation"
)

// computeState is what enableCompute set up.
type computeState struct {
	store  *compute.Store
	ledger *fl.SQLLedger
	mu     sync.Mutex
	// running learning runs, by id: their latest state.
	running map[string]*compute.LearningState
	wg      sync.WaitGroup
}

// maxComputeBody bounds a computation's request (weights and programs
// travel inline, in base64).
const maxComputeBody = compute.MaxWeightsBytes*4/3 + 4<<20

// enableCompute opens the computations' store on the hub's database.
func (h *Hub) enableCompute() error {
	st, err := compute.OpenStore(context.Background(), h.store.db)
	if err != nil {
		return fmt.Errorf("hub: computations: %w", err)
	}
	if n, err := st.FailRunning(context.Background(), "the hub stopped while it ran; start it again"); err != nil {
		return fmt.Errorf("hub: computations: %w", err)
	} else if n > 0 {
		h.log.Warn("computations the hub was running when it stopped are marked failed", "count", n)
	}
	capEps := h.cfg.Processing.EpsilonCap
	if capEps <= 0 {
		capEps = 10
	}
	ledger, err := fl.NewLedger(h.store.db, capEps)
	if err != nil {
		return fmt.Errorf("hub: privacy ledger: %w", err)
	}
	h.compute.Store(&computeState{store: st, ledger: ledger, running: map[string]*compute.LearningState{}})
	return nil
}

// WaitComputations waits for the learning runs started so far to end
// (tests and shutdown).
func (h *Hub) WaitComputations() {
	if cs := h.compute.Load(); cs != nil {
		cs.wg.Wait()
	}
}

// computeRoutes mounts the analyses, learning and validation API and
// pages.
func (h *Hub) computeRoutes(route func(string, http.HandlerFunc)) {
	route("POST /api/v1/analyses", h.requireUser(h.apiAnalysis))
	route("GET /api/v1/analyses", h.requireUser(h.apiAnalyses))
	route("GET /api/v1/analyses/{id}", h.requireUser(h.apiComputation))
	route("POST /api/v1/learning", h.requireUser(h.apiLearning))
	route("GET /api/v1/learning/{id}", h.requireUser(h.apiComputation))
	route("GET /api/v1/learning/{id}/weights", h.requireUser(h.apiLearningWeights))
	route("POST /api/v1/validations", h.requireUser(h.apiValidation))
	route("GET /api/v1/validations/{id}", h.requireUser(h.apiComputation))
	h.computePages(route)
}

// hubAsker carries compute steps as the hub's signed tasks.
type hubAsker struct{ h *Hub }

func (a hubAsker) Step(ctx context.Context, node string, body fed.ComputeBody, wait time.Duration) (fed.ComputeAnswer, error) {
	var ans fed.ComputeAnswer
	id, err := a.h.Ask(ctx, node, fed.TaskCompute, body, wait, &ans)
	if err != nil {
		return ans, err
	}
	if ans.TaskID != id {
		return ans, fmt.Errorf("hub: %s answered another task", node)
	}
	return ans, nil
}

func (a hubAsker) NodeKey(ctx context.Context, node string) ed25519.PublicKey {
	k := a.h.NodeKey(ctx, node)
	if len(k) != ed25519.PublicKeySize {
		return nil
	}
	return ed25519.PublicKey(k)
}

func (h *Hub) runner(researcher, comp string) *compute.Runner {
	cfg := h.cfg.Processing
	return &compute.Runner{Ask: hubAsker{h}, Researcher: researcher, StepTimeout: cfg.StepTimeout,
		Record: func(action, subject string, detail map[string]any) {
			detail["researcher"] = researcher
			h.note("hub", action, subject, detail)
		}}
}

// permitsOf are the targets of a computation: the permits named, or
// those of an access request, of researcher.
type permitsOf struct {
	Request string   `json:"request"`
	Permits []string `json:"permits"`
}

// errNoPermits is the error of a computation with no permit.
var errNoPermits = errors.New("give request (an access request id) or permits (ids of process permits)")

func (h *Hub) targets(ctx context.Context, researcher string, p permitsOf) ([]compute.Target, error) {
	ids := slices.Clone(p.Permits)
	if p.Request != "" {
		if !permitID.MatchString(p.Request) {
			return nil, errors.New("request: not an access request id")
		}
		rows, err := h.store.db.Query(ctx, `SELECT id FROM access_permits WHERE request_id = ? AND researcher = ? ORDER BY node_id, dataset_id`, p.Request, researcher)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%w: access request %s has no permit of yours", ErrNotFound, p.Request)
		}
	}
	if len(ids) == 0 {
		return nil, errNoPermits
	}
	h.acc.mu.Lock()
	lookup := h.acc.permits
	h.acc.mu.Unlock()
	if lookup == nil {
		return nil, fmt.Errorf("%w: access requests are not enabled", ErrNotFound)
	}
	seen := map[string]bool{}
	var out []compute.Target
	for _, id := range ids {
		if !permitID.MatchString(id) {
			return nil, fmt.Errorf("permits: %q is not a permit id", id)
		}
		ref, err := lookup(ctx, id, researcher)
		if err != nil {
			return nil, fmt.Errorf("permit %s: %w", id, err)
		}
		if seen[ref.Node] {
			return nil, fmt.Errorf("permits: two permits for node %s; one dataset per node takes part", ref.Node)
		}
		seen[ref.Node] = true
		// A revoked or expired permit is still sent: the node refuses it
		// and says so, as it would any permit.
		out = append(out, compute.Target{Node: ref.Node, PermitID: id, Token: ref.Token})
	}
	return out, nil
}

func (h *Hub) computeUnavailable(w http.ResponseWriter) *computeState {
	cs := h.compute.Load()
	if cs == nil {
		apiError(w, http.StatusServiceUnavailable, "federated computations are not enabled on this hub")
	}
	return cs
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxComputeBody))
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func (h *Hub) targetsOrError(w http.ResponseWriter, r *http.Request, u User, p permitsOf) ([]compute.Target, bool) {
	t, err := h.targets(r.Context(), u.ID, p)
	switch {
	case errors.Is(err, ErrNotFound):
		apiError(w, http.StatusNotFound, err.Error())
		return nil, false
	case err != nil:
		apiError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return t, true
}

// analysisBody is the body of POST /api/v1/analyses.
type analysisBody struct {
	compute.AnalysisRequest
	permitsOf
}

func (h *Hub) apiAnalysis(w http.ResponseWriter, r *http.Request) {
	cs := h.computeUnavailable(w)
	if cs == nil {
		return
	}
	u := r.Context().Value(userKey).(User)
	var b analysisBody
	if !decodeBody(w, r, &b) {
		return
	}
	if err := b.AnalysisRequest.Check(); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	targets, ok := h.targetsOrError(w, r, u, b.permitsOf)
	if !ok {
		return
	}
	id := fed.NewID()
	req, _ := json.Marshal(b)
	if err := h.record(u.ID, actionAnalysis, id, map[string]any{"type": b.Type, "formula": b.Formula, "table": b.Table, "nodes": targetNodes(targets)}); err != nil {
		apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log: try again later")
		return
	}
	if err := cs.store.Create(r.Context(), id, compute.KindAnalysis, u.ID, b.Type+" "+b.Formula, string(req)); err != nil {
		h.log.Error("computation not stored", "err", err)
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	res, err := h.runner(u.ID, id).Analyze(r.Context(), id, b.AnalysisRequest, targets)
	out := analysisOut{ID: id, AnalysisResult: res}
	if err != nil {
		out.Error = err.Error()
	}
	h.finish(cs, u.ID, actionAnalysis, id, out, err)
	status := http.StatusOK
	if err != nil {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, out)
}

// analysisOut is an analysis's answer.
type analysisOut struct {
	ID string `json:"id"`
	*compute.AnalysisResult
	Error string `json:"error,omitempty"`
}

// finish stores and audits a computation's end.
func (h *Hub) finish(cs *computeState, researcher, action, id string, out any, err error) {
	raw, _ := json.Marshal(out)
	state, errText := compute.StateSucceeded, ""
	if err != nil {
		state, errText = compute.StateFailed, err.Error()
	}
	if serr := cs.store.Update(context.Background(), id, state, string(raw), errText); serr != nil {
		h.log.Error("computation not stored", "id", id, "err", serr)
	}
	h.note(researcher, action+"-end", id, map[string]any{"state": state, "error": errText})
}

func targetNodes(ts []compute.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Node)
	}
	return out
}

func (h *Hub) apiAnalyses(w http.ResponseWriter, r *http.Request) {
	cs := h.computeUnavailable(w)
	if cs == nil {
		return
	}
	u := r.Context().Value(userKey).(User)
	kind := r.URL.Query().Get("kind")
	if kind == "" {
		kind = compute.KindAnalysis
	}
	recs, err := cs.store.List(r.Context(), u.ID, kind, 50)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	out := []map[string]any{}
	for _, rec := range recs {
		out = append(out, recordJSON(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func recordJSON(rec compute.Record) map[string]any {
	m := map[string]any{"id": rec.ID, "kind": rec.Kind, "name": rec.Name, "state": rec.State, "created": rec.Created, "updated": rec.Updated}
	if rec.Error != "" {
		m["error"] = rec.Error
	}
	if rec.Request != "" {
		m["request"] = json.RawMessage(rec.Request)
	}
	if rec.Result != "" {
		m["result"] = json.RawMessage(rec.Result)
	}
	return m
}

func (h *Hub) apiComputation(w http.ResponseWriter, r *http.Request) {
	cs := h.computeUnavailable(w)
	if cs == nil {
		return
	}
	u := r.Context().Value(userKey).(User)
	rec, err := cs.store.Get(r.Context(), r.PathValue("id"), u.ID)
	if errors.Is(err, compute.ErrNotFound) {
		apiError(w, http.StatusNotFound, "no such computation")
		return
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	kind := map[string]string{"analyses": compute.KindAnalysis, "learning": compute.KindLearning, "validations": compute.KindValidation}[strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")[0]]
	if rec.Kind != kind {
		apiError(w, http.StatusNotFound, "no such computation")
		return
	}
	m := recordJSON(*rec)
	if rec.Kind == compute.KindLearning {
		// The request's weights and program are large: show their size.
		var spec compute.LearningSpec
		if json.Unmarshal([]byte(rec.Request), &spec) == nil {
			m["request"] = map[string]any{"name": spec.Name, "rounds": spec.Rounds, "algorithm": spec.Algorithm, "mu": spec.Mu, "program": spec.Program.Digest,
				"secure": spec.Secure == nil || *spec.Secure, "dp": spec.DP, "params": spec.Params}
		}
		cs.mu.Lock()
		if st, ok := cs.running[rec.ID]; ok {
			m["result"] = map[string]any{"rounds": st.Rounds}
		}
		cs.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, m)
}

// learningBody is the body of POST /api/v1/learning.
type learningBody struct {
	compute.LearningSpec
	permitsOf
}

func (h *Hub) apiLearning(w http.ResponseWriter, r *http.Request) {
	cs := h.computeUnavailable(w)
	if cs == nil {
		return
	}
	u := r.Context().Value(userKey).(User)
	var b learningBody
	if !decodeBody(w, r, &b) {
		return
	}
	if err := b.LearningSpec.Check(); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	targets, ok := h.targetsOrError(w, r, u, b.permitsOf)
	if !ok {
		return
	}
	id := fed.NewID()
	if err := h.record(u.ID, actionLearning, id, map[string]any{"name": b.Name, "program": b.Program.Digest, "rounds": b.Rounds, "algorithm": b.Algorithm,
		"secure": b.Secure == nil || *b.Secure, "dp": b.DP != nil, "nodes": targetNodes(targets)}); err != nil {
		apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log: try again later")
		return
	}
	req, _ := json.Marshal(b.LearningSpec)
	if err := cs.store.Create(r.Context(), id, compute.KindLearning, u.ID, b.Name, string(req)); err != nil {
		h.log.Error("computation not stored", "err", err)
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	cs.store.SetWeights(r.Context(), id, b.Weights)
	cs.mu.Lock()
	cs.running[id] = &compute.LearningState{}
	cs.mu.Unlock()
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		cfg := h.cfg.Processing
		rt := cfg.RoundTimeout
		if rt <= 0 {
			rt = 30 * time.Minute
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.Rounds+1)*rt)
		defer cancel()
		st, err := h.runner(u.ID, id).Learn(ctx, id, b.LearningSpec, targets, rt, cs.ledger, func(st *compute.LearningState) {
			cp := &compute.LearningState{Rounds: slices.Clone(st.Rounds)}
			cs.mu.Lock()
			cs.running[id] = cp
			cs.mu.Unlock()
			if err := cs.store.SetWeights(context.Background(), id, st.Weights); err != nil {
				h.log.Error("weights not stored", "id", id, "err", err)
			}
			raw, _ := json.Marshal(map[string]any{"rounds": cp.Rounds})
			cs.store.Update(context.Background(), id, compute.StateRunning, string(raw), "")
		})
		out := map[string]any{"rounds": []compute.Round{}}
		if st != nil {
			out["rounds"] = st.Rounds
		}
		h.finish(cs, u.ID, actionLearning, id, out, err)
		cs.mu.Lock()
		delete(cs.running, id)
		cs.mu.Unlock()
	}()
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "state": compute.StateRunning, "url": "/api/v1/learning/" + id})
}

func (h *Hub) apiLearningWeights(w http.ResponseWriter, r *http.Request) {
	cs := h.computeUnavailable(w)
	if cs == nil {
		return
	}
	u := r.Context().Value(userKey).(User)
	rec, err := cs.store.Get(r.Context(), r.PathValue("id"), u.ID)
	if err != nil || rec.Kind != compute.KindLearning {
		apiError(w, http.StatusNotFound, "no such learning run")
		return
	}
	wb, err := cs.store.Weights(r.Context(), rec.ID, u.ID)
	if err != nil {
		apiError(w, http.StatusNotFound, "no such learning run")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rec.ID+`.safetensors"`)
	w.Write(wb)
}

// validationBody is the body of POST /api/v1/validations.
type validationBody struct {
	compute.ValidationSpec
	permitsOf
}

func (h *Hub) apiValidation(w http.ResponseWriter, r *http.Request) {
	cs := h.computeUnavailable(w)
	if cs == nil {
		return
	}
	u := r.Context().Value(userKey).(User)
	var b validationBody
	if !decodeBody(w, r, &b) {
		return
	}
	targets, ok := h.targetsOrError(w, r, u, b.permitsOf)
	if !ok {
		return
	}
	id := fed.NewID()
	name := b.Formula
	if b.Program != nil {
		name = b.Program.Name
	}
	if err := h.record(u.ID, actionValidation, id, map[string]any{"model": name, "table": b.Table, "nodes": targetNodes(targets)}); err != nil {
		apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log: try again later")
		return
	}
	if err := cs.store.Create(r.Context(), id, compute.KindValidation, u.ID, name, "{}"); err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	res, err := h.runner(u.ID, id).Validate(r.Context(), id, b.ValidationSpec, targets)
	out := validationOut{ID: id, ValidationResult: res}
	if err != nil {
		out.Error = err.Error()
	}
	h.finish(cs, u.ID, actionValidation, id, out, err)
	status := http.StatusOK
	if err != nil {
		status = http.StatusUnprocessableEntity
		if res == nil {
			status = http.StatusBadRequest
		}
	}
	writeJSON(w, status, out)
}

// validationOut is a validation's answer.
type validationOut struct {
	ID string `json:"id"`
	*compute.ValidationResult
	Error string `json:"error,omitempty"`
}

// MarshalJSON writes the validation's fields beside its id and error.
func (v validationOut) MarshalJSON() ([]byte, error) {
	out := map[string]json.RawMessage{}
	if v.ValidationResult != nil {
		b, err := json.Marshal(v.ValidationResult)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
	}
	out["id"], _ = json.Marshal(v.ID)
	if v.Error != "" {
		out["error"], _ = json.Marshal(v.Error)
	}
	return json.Marshal(out)
}

package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/httpx"
)

// maxBody bounds a JSON request body (a tool's program is inside).
const maxBody = MaxProgram*2 + 64<<10

// Handler returns the JSON API of jobs and tools (docs/processing.md):
// POST/GET /api/v1/jobs, GET/DELETE /api/v1/jobs/{id}, GET
// /api/v1/jobs/{id}/logs (?follow=1 streams), GET
// /api/v1/jobs/{id}/outputs and /outputs/{node}/{name}, POST/GET
// /api/v1/tools, GET /api/v1/tools/{id}, POST
// /api/v1/tools/{id}/reviews. auth authenticates every route.
func (s *Service) Handler(auth func(r *http.Request) (Actor, bool)) http.Handler {
	mux := http.NewServeMux()
	user := func(fn func(w http.ResponseWriter, r *http.Request, a Actor)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			a, ok := auth(r)
			if !ok || a.ID == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mosaic-hub"`)
				httpx.Error(w, http.StatusUnauthorized, "log in first: Authorization: Bearer TOKEN")
				return
			}
			fn(w, r, a)
		}
	}
	mux.HandleFunc("POST /api/v1/jobs", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		var spec Spec
		if !decode(w, r, &spec) {
			return
		}
		j, err := s.Submit(r.Context(), a, spec)
		status := http.StatusCreated
		if j != nil && j.DryRun {
			status = http.StatusOK
		}
		answer(w, status, j, err)
	}))
	mux.HandleFunc("GET /api/v1/jobs", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		l, err := s.List(r.Context(), a)
		answer(w, http.StatusOK, map[string]any{"jobs": l}, err)
	}))
	mux.HandleFunc("GET /api/v1/jobs/{id}", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		j, err := s.Get(r.Context(), a, r.PathValue("id"))
		answer(w, http.StatusOK, j, err)
	}))
	mux.HandleFunc("DELETE /api/v1/jobs/{id}", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		j, err := s.Cancel(r.Context(), a, r.PathValue("id"))
		answer(w, http.StatusOK, j, err)
	}))
	mux.HandleFunc("GET /api/v1/jobs/{id}/logs", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		s.serveLogs(w, r, a)
	}))
	mux.HandleFunc("GET /api/v1/jobs/{id}/outputs", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		l, err := s.Outputs(r.Context(), a, r.PathValue("id"))
		answer(w, http.StatusOK, map[string]any{"outputs": l}, err)
	}))
	mux.HandleFunc("GET /api/v1/jobs/{id}/outputs/{node}/{name}", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		o, data, err := s.Output(r.Context(), a, r.PathValue("id"), r.PathValue("node"), r.PathValue("name"))
		if err != nil {
			answer(w, 0, nil, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename=%q`, o.Name))
		w.Header().Set("Content-Length", strconv.FormatInt(int64(len(data)), 10))
		w.Header().Set("Digest", "sha-256="+o.SHA256)
		w.Header().Set("X-Content-SHA256", o.SHA256)
		w.Write(data)
	}))
	mux.HandleFunc("POST /api/v1/tools", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		var in ToolInput
		if !decode(w, r, &in) {
			return
		}
		t, err := s.RegisterTool(r.Context(), a, in)
		answer(w, http.StatusCreated, t, err)
	}))
	mux.HandleFunc("GET /api/v1/tools", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		l, err := s.Tools(r.Context())
		answer(w, http.StatusOK, map[string]any{"tools": l, "reviews_needed": s.cfg.ToolReviews, "organisations_needed": s.cfg.ToolOrganisations}, err)
	}))
	mux.HandleFunc("GET /api/v1/tools/{id}", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		t, err := s.Tool(r.Context(), r.PathValue("id"))
		answer(w, http.StatusOK, t, err)
	}))
	mux.HandleFunc("POST /api/v1/tools/{id}/reviews", user(func(w http.ResponseWriter, r *http.Request, a Actor) {
		var in struct {
			Decision string `json:"decision"`
			Comment  string `json:"comment"`
		}
		if !decode(w, r, &in) {
			return
		}
		t, err := s.ReviewTool(r.Context(), a, r.PathValue("id"), in.Decision, in.Comment)
		answer(w, http.StatusOK, t, err)
	}))
	return mux
}

// serveLogs answers the released log lines as JSON, or with ?follow=1
// as a stream of text lines (text/event-stream when the client accepts
// it) until the job ends at every node or the client goes.
func (s *Service) serveLogs(w http.ResponseWriter, r *http.Request, a Actor) {
	ctx, id, node := r.Context(), r.PathValue("id"), r.URL.Query().Get("node")
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if r.URL.Query().Get("follow") == "" {
		l, err := s.Logs(ctx, a, id, node, after, 10000)
		answer(w, http.StatusOK, map[string]any{"lines": l}, err)
		return
	}
	if _, err := s.Get(ctx, a, id); err != nil {
		answer(w, 0, nil, err)
		return
	}
	sse := r.Header.Get("Accept") == "text/event-stream"
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	for {
		changes := s.Changes(id)
		lines, err := s.Logs(ctx, a, id, node, after, 10000)
		if err != nil {
			return
		}
		for _, l := range lines {
			if sse {
				b, _ := json.Marshal(l)
				fmt.Fprintf(w, "id: %d\ndata: %s\n\n", l.ID, b)
			} else {
				fmt.Fprintf(w, "%s: %s\n", l.Node, l.Line)
			}
			after = l.ID
		}
		if len(lines) > 0 {
			flush()
			continue
		}
		j, err := s.Get(ctx, a, id)
		if err != nil {
			return
		}
		done := true
		for _, n := range j.Nodes {
			done = done && (terminal(n.State) || n.State == "held")
		}
		if done {
			if sse {
				fmt.Fprintf(w, "event: end\ndata: %s\n\n", j.State)
			}
			flush()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-time.After(15 * time.Second):
			if sse {
				io.WriteString(w, ": keep-alive\n\n")
				flush()
			}
		}
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			httpx.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
			return false
		}
		httpx.Error(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	if dec.More() {
		httpx.Error(w, http.StatusBadRequest, "bad JSON body: more than one value")
		return false
	}
	return true
}

// answer writes v, or err as its status.
func answer(w http.ResponseWriter, status int, v any, err error) {
	switch {
	case err == nil:
		httpx.JSON(w, status, v)
	case errors.Is(err, ErrNotFound):
		httpx.Error(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrForbidden):
		httpx.Error(w, http.StatusForbidden, err.Error())
	case errors.Is(err, ErrConflict):
		httpx.Error(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrInvalid):
		httpx.Error(w, http.StatusBadRequest, err.Error())
	default:
		httpx.Error(w, http.StatusInternalServerError, "internal error")
	}
}

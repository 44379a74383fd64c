package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/mosaic-imaging/mosaic/internal/httpx"
)

// maxBody bounds a JSON request body.
const maxBody = 64 << 10

// Handler returns the JSON API of access requests, permits, snapshots
// and notifications (see docs/access.md). auth authenticates a request;
// every route but GET /api/v1/snapshots/{id} and GET
// /api/v1/access-requests/duo needs it.
func (s *Service) Handler(auth func(r *http.Request) (Person, bool)) http.Handler {
	mux := http.NewServeMux()
	user := func(fn func(w http.ResponseWriter, r *http.Request, p Person)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			p, ok := auth(r)
			if !ok || p.ID == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mosaic-hub"`)
				httpx.Error(w, http.StatusUnauthorized, "log in first: Authorization: Bearer TOKEN")
				return
			}
			fn(w, r, p)
		}
	}
	const base = "/api/v1/access-requests"
	mux.HandleFunc("GET "+base+"/duo", func(w http.ResponseWriter, r *http.Request) { httpx.JSON(w, http.StatusOK, DUO) })
	mux.HandleFunc("POST "+base, user(func(w http.ResponseWriter, r *http.Request, p Person) {
		var in Input
		if !decode(w, r, &in) {
			return
		}
		req, err := s.Create(r.Context(), p, in)
		answer(w, http.StatusCreated, req, err)
	}))
	mux.HandleFunc("GET "+base, user(func(w http.ResponseWriter, r *http.Request, p Person) {
		l, err := s.List(r.Context(), p, r.URL.Query().Get("list"))
		answer(w, http.StatusOK, map[string]any{"requests": l}, err)
	}))
	mux.HandleFunc("GET "+base+"/{id}", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		req, err := s.Get(r.Context(), p, r.PathValue("id"))
		answer(w, http.StatusOK, req, err)
	}))
	mux.HandleFunc("PATCH "+base+"/{id}", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		var in Input
		if !decode(w, r, &in) {
			return
		}
		req, err := s.Update(r.Context(), p, r.PathValue("id"), in)
		answer(w, http.StatusOK, req, err)
	}))
	mux.HandleFunc("POST "+base+"/{id}/submit", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		if !decodeOptional(w, r) {
			return
		}
		req, err := s.Submit(r.Context(), p, r.PathValue("id"))
		answer(w, http.StatusOK, req, err)
	}))
	type decisionBody struct {
		Decision string `json:"decision"`
		Message  string `json:"message"`
	}
	mux.HandleFunc("POST "+base+"/{id}/review", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		var b decisionBody
		if !decode(w, r, &b) {
			return
		}
		req, err := s.Review(r.Context(), p, r.PathValue("id"), b.Decision, b.Message)
		answer(w, http.StatusOK, req, err)
	}))
	mux.HandleFunc("POST "+base+"/{id}/datasets/{node}/{dataset}/decision", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		var b decisionBody
		if !decode(w, r, &b) {
			return
		}
		req, err := s.Decide(r.Context(), p, r.PathValue("id"), r.PathValue("node"), r.PathValue("dataset"), b.Decision, b.Message)
		answer(w, http.StatusOK, req, err)
	}))
	mux.HandleFunc("POST "+base+"/{id}/datasets/{node}/{dataset}/accept-conditions", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		if !decodeOptional(w, r) {
			return
		}
		req, err := s.AcceptConditions(r.Context(), p, r.PathValue("id"), r.PathValue("node"), r.PathValue("dataset"))
		answer(w, http.StatusOK, req, err)
	}))
	mux.HandleFunc("GET "+base+"/{id}/messages", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		thread := "*"
		if r.URL.Query().Has("thread") {
			thread = r.URL.Query().Get("thread")
		}
		m, err := s.Messages(r.Context(), p, r.PathValue("id"), thread)
		answer(w, http.StatusOK, map[string]any{"messages": m}, err)
	}))
	mux.HandleFunc("POST "+base+"/{id}/messages", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		var b struct {
			Thread string `json:"thread"`
			Body   string `json:"body"`
		}
		if !decode(w, r, &b) {
			return
		}
		m, err := s.Post(r.Context(), p, r.PathValue("id"), b.Thread, b.Body)
		answer(w, http.StatusCreated, m, err)
	}))
	mux.HandleFunc("GET /api/v1/notifications", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		n, err := s.Notifications(r.Context(), p.ID, r.URL.Query().Get("unread") == "true")
		answer(w, http.StatusOK, map[string]any{"notifications": n}, err)
	}))
	mux.HandleFunc("POST /api/v1/notifications/{id}/read", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			httpx.Error(w, http.StatusBadRequest, "notification ids are numbers")
			return
		}
		answer(w, http.StatusOK, map[string]string{"status": "read"}, s.MarkRead(r.Context(), p.ID, id))
	}))
	mux.HandleFunc("POST /api/v1/permits/{id}/revoke", user(func(w http.ResponseWriter, r *http.Request, p Person) {
		if !decodeOptional(w, r) {
			return
		}
		answer(w, http.StatusOK, map[string]string{"status": "revoked"}, s.Revoke(r.Context(), p, r.PathValue("id")))
	}))
	mux.HandleFunc("GET /api/v1/snapshots/{id}", func(w http.ResponseWriter, r *http.Request) {
		snap, err := s.Snapshot(r.Context(), r.PathValue("id"))
		answer(w, http.StatusOK, snap, err)
	})
	return mux
}

// decode reads a JSON body of at most maxBody bytes with no unknown
// fields into v, answering 400 or 413 itself when it cannot.
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

// decodeOptional accepts an empty body or an empty JSON object.
func decodeOptional(w http.ResponseWriter, r *http.Request) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		httpx.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
		return false
	}
	if len(b) == 0 {
		return true
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 0 {
		httpx.Error(w, http.StatusBadRequest, "this route takes no body (or {})")
		return false
	}
	return true
}

// answer writes v, or err as its status: 404, 403, 409, 400, 502, else
// 500 without details.
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
	case errors.Is(err, ErrSnapshot):
		httpx.Error(w, http.StatusBadGateway, err.Error())
	default:
		httpx.Error(w, http.StatusInternalServerError, "internal error")
	}
}

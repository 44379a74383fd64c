// Package httpx holds the HTTP plumbing the hub and the node share:
// request instrumentation (latency by route and status, recovery from
// handler bugs without request data in the log) and JSON answers.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StatusWriter records the status code of a response. It keeps
// ReadFrom, so that copying a file to the response can still use
// sendfile, and Flush.
type StatusWriter struct {
	http.ResponseWriter
	Code int
}

// WriteHeader records the first status written.
func (s *StatusWriter) WriteHeader(c int) {
	if s.Code == 0 {
		s.Code = c
	}
	s.ResponseWriter.WriteHeader(c)
}

func (s *StatusWriter) Write(b []byte) (int, error) {
	if s.Code == 0 {
		s.Code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ReadFrom passes the copy to the connection's ReadFrom.
func (s *StatusWriter) ReadFrom(r io.Reader) (int64, error) {
	if s.Code == 0 {
		s.Code = http.StatusOK
	}
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{s.ResponseWriter}, r)
}

// Flush passes flushes through to the connection.
func (s *StatusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Instrument wraps next: it observes each request's latency in seconds
// labelled by route and status code, and turns a panic (a bug, never
// input) into a logged 500 without request data, so the service keeps
// serving. http.ErrAbortHandler, which handlers raise to cut a response
// already under way, is passed on so the connection is closed.
func Instrument(route string, log *slog.Logger, seconds *prometheus.HistogramVec, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		sw := &StatusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			code := sw.Code
			if code == 0 {
				code = http.StatusOK
			}
			if v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					seconds.WithLabelValues(route, "aborted").Observe(time.Since(t0).Seconds())
					panic(v)
				}
				log.Error("handler panic", "route", route, "panic", fmt.Sprint(v))
				if sw.Code == 0 {
					Error(sw, http.StatusInternalServerError, "internal error")
				}
				code = http.StatusInternalServerError
			}
			seconds.WithLabelValues(route, strconv.Itoa(code)).Observe(time.Since(t0).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// Error answers {"error": msg} with the status.
func Error(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// JSON answers v, indented, with the status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

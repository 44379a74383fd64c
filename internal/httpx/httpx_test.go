package httpx

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestInstrument(t *testing.T) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t"}, []string{"route", "code"})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.Handle("/ok", Instrument("ok", log, h, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { JSON(w, 201, map[string]int{"a": 1}) })))
	mux.Handle("/bug", Instrument("bug", log, h, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("bug") })))
	mux.Handle("/cut", Instrument("cut", log, h, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/ok")
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("ok: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(srv.URL + "/bug")
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("bug: %v %v", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "internal error") {
		t.Errorf("bug body: %s", b)
	}
	// An aborted response reaches the client as an error, not as a
	// complete body.
	resp, err = http.Get(srv.URL + "/cut")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("aborted response read as complete")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["route"]] = l["code"]
		}
	}
	for route, code := range map[string]string{"ok": "201", "bug": "500", "cut": "aborted"} {
		if got[route] != code {
			t.Errorf("route %s observed with code %q, want %q (all: %v)", route, got[route], code, got)
		}
	}
}

package hub

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The web pages are rendered on the server from templates embedded in the
// binary, with one stylesheet and no script: every page works without
// JavaScript, and charts are drawn as inline SVG. Pages show only what the
// API shows: catalogue summaries and counts under each node's disclosure
// control, never patient data.
//
// This file holds what every page shares: the routes, the layout, the
// templates and the security headers. Each page has its own file
// (web_dashboard.go, web_catalogue.go, web_dataset.go, web_search.go,
// web_nodes.go, web_login.go), and web_format.go the functions templates
// use to write numbers, dates and codes.

//go:embed ui
var uiFiles embed.FS

// uiSessionTTL is how long a browser session lasts.
const uiSessionTTL = 12 * time.Hour

// uiCSP allows the page's own stylesheet and nothing else: no script, no
// external asset, no framing, forms posting only to the hub.
const uiCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// uiAssets are the parsed templates and the stylesheet.
type uiAssets struct {
	pages   map[string]*template.Template
	css     []byte
	cssHash string
}

// uiLoad parses the templates on first use rather than at start-up:
// commands that serve no page (mosaic --version, the node) do not pay for
// it. The templates are embedded and checked by the tests, so an error is
// a broken build and panics.
var uiLoad = sync.OnceValue(func() uiAssets {
	css, err := uiFiles.ReadFile("ui/style.css")
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(css)
	a := uiAssets{pages: map[string]*template.Template{}, css: css, cssHash: hex.EncodeToString(sum[:6])}
	funcs := template.FuncMap{
		"num":      uiNum,
		"join":     func(v []string) string { return strings.Join(v, ", ") },
		"date":     uiDate,
		"datetime": uiDateTime,
		"ago":      uiAgo,
		"ms":       func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + " ms" },
		"tier":     uiTierName,
		"modality": uiModalityName,
		"part":     uiBodyPartName,
		"cssHash":  func() string { return a.cssHash },
	}
	pages, err := fs.Glob(uiFiles, "ui/*.html")
	if err != nil {
		panic(err)
	}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "ui/"), ".html")
		if name == "layout" {
			continue
		}
		a.pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(uiFiles, "ui/layout.html", p))
	}
	return a
})

// uiVersion is the module version the binary was built from, or "" for
// development builds.
var uiVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
})

// uiRoutes registers the web pages.
func (h *Hub) uiRoutes(route func(string, http.HandlerFunc)) {
	// Forms that change state (log in, log out, search) are refused when a
	// browser says they come from another site.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.uiMessage(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site. For your protection the hub only accepts forms sent from its own pages: go back to the hub and try again.")
	}))
	protect := func(fn http.HandlerFunc) http.HandlerFunc { return cop.Handler(fn).ServeHTTP }

	route("GET /ui/style.css", uiStyle)
	route("GET /{$}", h.uiDashboard)
	route("GET /catalogue", h.uiCatalogue)
	route("GET /datasets/{node}/{dataset}", h.uiDataset)
	route("GET /search", h.uiSearchForm)
	route("POST /search", protect(h.uiSearch))
	route("GET /nodes", h.uiNodes)
	route("GET /snapshots/{id}", h.uiSnapshot)
	route("GET /login", h.uiLoginForm)
	route("POST /login", protect(h.uiLogin))
	route("POST /logout", protect(h.uiLogout))
	h.accessUIRoutes(route, protect)
	// Every other GET: a 404 page for people, the API's JSON error under
	// /api/.
	route("GET /", h.uiNotFound)
}

// uiPage is what the layout renders around a page's content.
type uiPage struct {
	Title   string
	Active  string // the nav item of this page
	User    *User
	Version string
	// Here is the page's own path and query, for the login link to come
	// back to.
	Here string
	Body any
}

func (h *Hub) uiRender(w http.ResponseWriter, r *http.Request, status int, name string, p uiPage) {
	t := uiLoad().pages[name]
	if t == nil {
		panic("hub: no page template " + name)
	}
	if p.User == nil {
		if u, ok := h.userOf(r); ok {
			p.User = &u
		}
	}
	p.Version = uiVersion()
	if r.Method == http.MethodGet && p.Here == "" && r.URL.Path != "/login" {
		p.Here = r.URL.RequestURI()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log.Error("page rendering failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", uiCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type uiMessageData struct {
	Heading, Text  string
	Link, LinkText string
}

// uiMessage renders a page that only says something (errors, refusals).
func (h *Hub) uiMessage(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	h.uiRender(w, r, status, "message", uiPage{Title: heading, Body: uiMessageData{Heading: heading, Text: text, Link: "/", LinkText: "Back to the dashboard"}})
}

func (h *Hub) uiInternalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.Error("page failed", "page", what, "err", err)
	h.uiMessage(w, r, http.StatusInternalServerError, "Something went wrong", "The hub could not build this page. Try again in a moment; if it keeps failing, tell the hub's operator.")
}

func uiStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(uiLoad().css)
}

func (h *Hub) uiNotFound(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") {
		apiError(w, http.StatusNotFound, "no GET endpoint at this path: see the API description")
		return
	}
	h.uiMessage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address. The catalogue lists every dataset of the federation.")
}

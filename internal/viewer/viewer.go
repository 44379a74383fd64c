// Package viewer serves Mosaic's image viewer: static assets (a small app
// on Cornerstone3D, built from web/viewer by `make viewer` and embedded at
// build time) and config.json, which tells the app the DICOMweb root it
// reads from. Every answer carries a Content Security Policy that lets the
// page run its own scripts only and talk to its own origin only, so the
// hub's session cookie is the app's only credential. When the assets were
// not built, the handler says so instead of failing.
package viewer

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var embedded embed.FS

// CSP is the Content Security Policy of every answer: scripts and workers
// from the page's origin only (no inline script, no eval, no WebAssembly:
// the node serves native frames, which the loader decodes in plain
// JavaScript, so the codecs' WebAssembly is neither shipped nor allowed),
// requests to the same origin only, no plugins, no framing, no forms.
const CSP = "default-src 'none'; script-src 'self'; worker-src 'self'; " +
	"connect-src 'self'; img-src 'self' data: blob:; style-src 'self'; font-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Assets is the viewer as built into this binary; empty (see Built) when
// `make viewer` did not run before `go build`.
func Assets() fs.FS {
	sub, err := fs.Sub(embedded, "assets/dist")
	if err != nil {
		panic(err) // a constant, valid path
	}
	return sub
}

// Built reports whether assets hold a built viewer.
func Built(assets fs.FS) bool {
	for _, name := range []string{"index.html", "app.js", "decodeImageFrameWorker.js"} {
		if st, err := fs.Stat(assets, name); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}

// RootFunc is the DICOMweb root the viewer reads from for a request of
// the page (the request of config.json carries the page's query string):
// a path on the same origin, such as /dicom-web/permits/{permit-id}/.
// ok false answers 404: the page has nothing to show.
type RootFunc func(r *http.Request) (root string, ok bool)

// Handler serves the embedded viewer; see New.
func Handler(root RootFunc) http.Handler { return New(Assets(), root) }

// New serves the viewer of assets (Assets(), or os.DirFS of a build
// directory) at the root of its path: mount it under a prefix with
// http.StripPrefix, as in mux.Handle("/viewer/", http.StripPrefix("/viewer", h)).
// GET / is the page, GET /config.json its configuration
// ({"root": "/dicom-web/..."}), and the rest are the assets.
func New(assets fs.FS, root RootFunc) http.Handler {
	return &handler{assets: assets, root: root, built: Built(assets), etags: map[string]string{}}
}

type handler struct {
	assets fs.FS
	root   RootFunc
	built  bool

	mu    sync.Mutex
	etags map[string]string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		problem(w, http.StatusMethodNotAllowed, "the viewer only answers GET and HEAD")
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	switch name {
	case "config.json":
		h.config(w, r)
		return
	case "":
		name = "index.html"
	}
	// Hidden files are never served. (Paths with dot segments or empty
	// elements are refused by every fs.FS: Open answers fs.ErrInvalid.)
	if strings.HasPrefix(path.Base(name), ".") {
		problem(w, http.StatusNotFound, "no such file in the viewer")
		return
	}
	h.serveFile(w, r, name)
}

func (h *handler) config(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	root, ok := h.root(r)
	if !ok {
		problem(w, http.StatusNotFound, "there is nothing to view here: open the viewer from a permit that allows view")
		return
	}
	if !sameOriginPath(root) {
		// A server's mistake, never the user's: the app must only
		// talk to this origin, with this origin's cookies.
		problem(w, http.StatusInternalServerError, "the viewer's DICOMweb root is not a path on this server")
		return
	}
	if !strings.HasSuffix(root, "/") {
		root += "/"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"root": root})
}

// sameOriginPath accepts an absolute path without scheme, host, query or
// fragment, and without dot segments.
func sameOriginPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "?#\\ \t\r\n") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok {
		ctype = "application/octet-stream"
	}
	hd := w.Header()
	hd.Set("Vary", "Accept-Encoding")
	// The build's gzipped copy, NAME.gz, to a browser that takes gzip.
	file := name
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		if st, err := fs.Stat(h.assets, name+".gz"); err == nil && !st.IsDir() {
			file = name + ".gz"
		}
	}
	f, err := h.assets.Open(file)
	if err != nil {
		if !h.built {
			notBuilt(w)
			return
		}
		problem(w, http.StatusNotFound, "no such file in the viewer")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		problem(w, http.StatusNotFound, "no such file in the viewer")
		return
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		b, err := io.ReadAll(f)
		if err != nil {
			problem(w, http.StatusInternalServerError, "the viewer's file cannot be read")
			return
		}
		rs = bytes.NewReader(b)
	}
	etag, err := h.etag(file, rs)
	if err != nil {
		problem(w, http.StatusInternalServerError, "the viewer's file cannot be read")
		return
	}
	if file != name {
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("Content-Type", ctype)
	hd.Set("ETag", etag)
	// The file names are not content-hashed: browsers revalidate each
	// time, and get 304 while the binary is the same.
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, rs)
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip (with
// a q-value other than 0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json",
	".wasm": "application/wasm",
	".png":  "image/png",
	".svg":  "image/svg+xml",
}

// etag is a strong validator of a file's content, computed once.
func (h *handler) etag(name string, rs io.ReadSeeker) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.etags[name]; ok {
		return e, nil
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, rs); err != nil {
		return "", err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	e := `"` + base64.RawURLEncoding.EncodeToString(sum.Sum(nil)[:18]) + `"`
	h.etags[name] = e
	return e, nil
}

// NotBuiltMessage is what the viewer's page says when the binary was
// built without the viewer.
const NotBuiltMessage = "the viewer is not built: run make viewer (it needs Node.js and npm), then build mosaic again"

func notBuilt(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Mosaic viewer</title></head>\n"+
		"<body><h1>Mosaic viewer</h1>\n<p id=\"not-built\">"+strings.ReplaceAll(NotBuiltMessage, "make viewer", "<code>make viewer</code>")+".</p></body></html>\n")
}

func problem(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

var errNotBuilt = errors.New(NotBuiltMessage)

// Check returns an error saying how to build the viewer when assets hold
// none, for commands that want to warn at start.
func Check(assets fs.FS) error {
	if Built(assets) {
		return nil
	}
	return errNotBuilt
}

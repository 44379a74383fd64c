package viewer_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mosaic-imaging/mosaic/internal/viewer"
)

// fakeBuild is a viewer build of a few bytes, for the handler's own tests.
var fakeBuild = fstest.MapFS{
	"app.js.gz":                 {Data: gzipped("console.log(1)")},
	"index.html":                {Data: []byte("<!doctype html><title>v</title>")},
	"app.js":                    {Data: []byte("console.log(1)")},
	"decodeImageFrameWorker.js": {Data: []byte("//")},
	"LICENSES.txt":              {Data: []byte("MIT")},
	"codec.wasm":                {Data: []byte("\x00asm")},
	"data.bin":                  {Data: []byte("\x01")},
	".hidden":                   {Data: []byte("secret")},
	"sub/inner.css":             {Data: []byte("a{}")},
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func serve(t *testing.T, h http.Handler, method, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/viewer/", http.StripPrefix("/viewer", h))
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func permitRoot(r *http.Request) (string, bool) {
	id := r.URL.Query().Get("permit")
	if id == "" {
		return "", false
	}
	return "/dicom-web/permits/" + id + "/", true
}

// TestHeaders: every answer, files, config and errors alike, carries the
// policy that keeps the page to its own scripts and its own origin.
func TestHeaders(t *testing.T) {
	h := viewer.New(fakeBuild, permitRoot)
	for _, target := range []string{"/viewer/", "/viewer/app.js", "/viewer/config.json?permit=p1", "/viewer/config.json", "/viewer/nothing.js"} {
		resp, _ := serve(t, h, "GET", target)
		csp := resp.Header.Get("Content-Security-Policy")
		if csp != viewer.CSP {
			t.Errorf("%s: Content-Security-Policy %q", target, csp)
		}
		for _, must := range []string{"script-src 'self';", "connect-src 'self';", "default-src 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, must) {
				t.Errorf("%s: the policy lacks %q", target, must)
			}
		}
		if strings.Contains(csp, "'unsafe-inline'") || strings.Contains(csp, "unsafe-eval'") {
			t.Errorf("%s: the policy allows inline or eval'd scripts: %q", target, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", target, k, got, v)
			}
		}
	}
}

// TestFiles: the page, scripts with a JavaScript type (module scripts
// and workers are refused otherwise under nosniff), WebAssembly, 304 on
// a matching ETag, HEAD.
func TestFiles(t *testing.T) {
	h := viewer.New(fakeBuild, permitRoot)
	resp, body := serve(t, h, "GET", "/viewer/?permit=p1")
	if resp.StatusCode != 200 || !strings.Contains(body, "<title>v</title>") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("page: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = serve(t, h, "GET", "/viewer/app.js")
	if resp.StatusCode != 200 || body != "console.log(1)" || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("app.js: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("app.js: ETag %q, Cache-Control %q", etag, resp.Header.Get("Cache-Control"))
	}
	if resp, _ := serve(t, h, "GET", "/viewer/app.js", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("app.js with its ETag: %d, want 304", resp.StatusCode)
	}
	if resp, _ := serve(t, h, "GET", "/viewer/codec.wasm"); resp.Header.Get("Content-Type") != "application/wasm" {
		t.Errorf("wasm: %q", resp.Header.Get("Content-Type"))
	}
	if resp, _ := serve(t, h, "GET", "/viewer/data.bin"); resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("data.bin: %q", resp.Header.Get("Content-Type"))
	}
	if resp, body := serve(t, h, "HEAD", "/viewer/LICENSES.txt"); resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	if resp, body := serve(t, h, "GET", "/viewer/sub/inner.css"); resp.StatusCode != 200 || body != "a{}" || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("sub/inner.css: %d %q", resp.StatusCode, body)
	}
}

// TestGzip: a browser that takes gzip gets the build's gzipped copy, with
// the file's own type; others, and files without a copy, get the file.
func TestGzip(t *testing.T) {
	h := viewer.New(fakeBuild, permitRoot)
	resp, body := serve(t, h, "GET", "/viewer/app.js", "Accept-Encoding", "br, gzip;q=0.8")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("gzip: Content-Encoding %q, Content-Type %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"))
	}
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != "console.log(1)" {
		t.Errorf("gzipped body: %q", plain)
	}
	if resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("Vary %q", resp.Header.Get("Vary"))
	}
	gzTag := resp.Header.Get("ETag")
	for _, ae := range []string{"", "gzip;q=0", "br", "identity"} {
		resp, body := serve(t, h, "GET", "/viewer/app.js", "Accept-Encoding", ae)
		if resp.Header.Get("Content-Encoding") != "" || body != "console.log(1)" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, body %q", ae, resp.Header.Get("Content-Encoding"), body)
		}
		if resp.Header.Get("ETag") == gzTag {
			t.Errorf("Accept-Encoding %q: the plain file has the gzipped copy's ETag", ae)
		}
	}
	if resp, body := serve(t, h, "GET", "/viewer/LICENSES.txt", "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != "" || body != "MIT" {
		t.Errorf("a file without a gzipped copy: Content-Encoding %q, body %q", resp.Header.Get("Content-Encoding"), body)
	}
	if resp, body := serve(t, h, "GET", "/viewer/nothing.js", "Accept-Encoding", "gzip"); resp.StatusCode != 404 || resp.Header.Get("Content-Encoding") != "" || !strings.Contains(body, "error") {
		t.Errorf("a missing file: %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
}

// TestBadPaths: hidden files, directories, traversal and missing files
// are 404 with a JSON error; other methods are 405.
func TestBadPaths(t *testing.T) {
	h := viewer.New(fakeBuild, permitRoot)
	for _, target := range []string{"/viewer/.hidden", "/viewer/sub", "/viewer/sub/", "/viewer/nothing.js", "/viewer/sub/../.hidden",
		"/viewer/%2e%2e/%2e%2e/etc/passwd", "/viewer/..%2fviewer.go", "/viewer//app.js"} {
		resp, body := serve(t, h, "GET", target)
		// The mux redirects unclean paths to clean ones (3xx): fine.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode/100 != 3 {
			t.Errorf("%s: %d %q, want 404", target, resp.StatusCode, body)
		}
		if strings.Contains(body, "secret") {
			t.Errorf("%s: a hidden file was served", target)
		}
	}
	// Unclean paths straight to the handler, with no mux to clean them.
	for _, p := range []string{"/../viewer.go", "/sub/../.hidden", "/./app.js", "/sub/./inner.css", "//app.js"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = p
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s straight to the handler: %d %q, want 404", p, rec.Code, rec.Body.String())
		}
	}
	for _, target := range []string{"/viewer/.hidden", "/viewer/sub", "/viewer/nothing.js"} {
		if _, body := serve(t, h, "GET", target); !strings.Contains(body, `"error"`) {
			t.Errorf("%s: the error is not JSON: %q", target, body)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		resp, _ := serve(t, h, m, "/viewer/app.js")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

// TestConfig: config.json gives the root the server chose for the page's
// query string, 404 when there is none, and refuses (500) a root that
// would send the page, with its cookies, anywhere but this origin.
func TestConfig(t *testing.T) {
	h := viewer.New(fakeBuild, permitRoot)
	resp, body := serve(t, h, "GET", "/viewer/config.json?permit=p-42")
	var cfg struct{ Root string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &cfg) != nil || cfg.Root != "/dicom-web/permits/p-42/" {
		t.Errorf("config: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("config: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if resp, body := serve(t, h, "GET", "/viewer/config.json"); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "permit") {
		t.Errorf("config without a permit: %d %q", resp.StatusCode, body)
	}
	noSlash := viewer.New(fakeBuild, func(*http.Request) (string, bool) { return "/dicom-web/lung", true })
	if _, body := serve(t, noSlash, "GET", "/viewer/config.json"); !strings.Contains(body, `"/dicom-web/lung/"`) {
		t.Errorf("a root without its final slash: %q", body)
	}
	for _, root := range []string{"https://elsewhere.example/dicom-web/", "//elsewhere.example/dicom-web/", "dicom-web/x/",
		"/dicom-web/../api/v1/", "/dicom-web/x/?token=1", "/a\\b/", "javascript:alert(1)", ""} {
		bad := viewer.New(fakeBuild, func(*http.Request) (string, bool) { return root, true })
		resp, body := serve(t, bad, "GET", "/viewer/config.json")
		if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "elsewhere") {
			t.Errorf("root %q: %d %q, want 500", root, resp.StatusCode, body)
		}
	}
}

// TestNotBuilt: a binary built without the viewer says how to build it,
// on the page and for any asset, and config.json still works.
func TestNotBuilt(t *testing.T) {
	empty := fstest.MapFS{}
	if viewer.Built(empty) || viewer.Check(empty) == nil {
		t.Fatal("an empty build counts as built")
	}
	if viewer.Built(fstest.MapFS{"index.html": {Data: []byte("x")}}) {
		t.Error("a build without app.js counts as built")
	}
	h := viewer.New(empty, permitRoot)
	for _, target := range []string{"/viewer/", "/viewer/index.html", "/viewer/app.js"} {
		resp, body := serve(t, h, "GET", target)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "the viewer is not built: run <code>make viewer</code>") {
			t.Errorf("%s: %d %q", target, resp.StatusCode, body)
		}
		if resp.Header.Get("Content-Security-Policy") != viewer.CSP {
			t.Errorf("%s: no policy on the not-built page", target)
		}
	}
	if resp, _ := serve(t, h, "GET", "/viewer/config.json?permit=p1"); resp.StatusCode != 200 {
		t.Errorf("config.json of an unbuilt viewer: %d", resp.StatusCode)
	}
}

// TestEmbedded: the binary's own assets are either a whole build or
// none (never a page without its scripts).
func TestEmbedded(t *testing.T) {
	h := viewer.Handler(permitRoot)
	resp, body := serve(t, h, "GET", "/viewer/")
	if viewer.Built(viewer.Assets()) {
		if resp.StatusCode != 200 || !strings.Contains(body, `src="app.js"`) {
			t.Errorf("built viewer page: %d %q", resp.StatusCode, body)
		}
		for _, f := range []string{"app.js", "decodeImageFrameWorker.js", "LICENSES.txt", "viewer.css"} {
			if resp, _ := serve(t, h, "GET", "/viewer/"+f); resp.StatusCode != 200 {
				t.Errorf("%s: %d", f, resp.StatusCode)
			}
		}
		if _, lic := serve(t, h, "GET", "/viewer/LICENSES.txt"); !strings.Contains(lic, "@cornerstonejs/core") || !strings.Contains(lic, "MIT") {
			t.Errorf("LICENSES.txt does not name Cornerstone3D's licence")
		}
	} else if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("unbuilt viewer page: %d", resp.StatusCode)
	}
}

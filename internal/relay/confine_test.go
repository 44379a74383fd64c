package relay

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestNodeCannotServeActiveContent: the hub serves relayed answers on
// its own origin, where its pages, session cookie and forms live. A
// compromised node answering text/html with a script must not have it
// run as the hub: the type becomes application/octet-stream, with
// nosniff and a sandboxing policy; DICOMweb's own types pass unchanged;
// nothing relayed is cached.
func TestNodeCannotServeActiveContent(t *testing.T) {
	f := newFixture(t, Options{})
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("ct"))
		w.Header().Set("Cache-Control", "public, max-age=86400")
		io.WriteString(w, `<script>fetch("/access/new")</script>`)
	}))
	for ct, want := range map[string]string{
		"text/html; charset=utf-8": "application/octet-stream",
		"image/svg+xml":            "application/octet-stream",
		"application/xhtml+xml":    "application/octet-stream",
		"text/javascript":          "application/octet-stream",
		"not a media type":         "application/octet-stream",
		`multipart/related; type="text/html"; boundary=x`:                  "application/octet-stream",
		`multipart/related; type="application/dicom"`:                      "application/octet-stream",
		"application/dicom+json":                                           "application/dicom+json",
		`multipart/related; type="application/octet-stream"; boundary=abc`: `multipart/related; type="application/octet-stream"; boundary=abc`,
	} {
		resp, err := http.Get(f.srv.URL + "/studies/1.2.3/series/4.5/instances/6.7/bulk/7FE00010?ct=" + urlQuery(ct))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("the node's %q came out as %q, want %q", ct, got, want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("%q: no nosniff or sandbox: %v", ct, resp.Header)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "private, no-store" {
			t.Errorf("%q: Cache-Control %q, want private, no-store", ct, cc)
		}
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", ";", "%3B", "=", "%3D", `"`, "%22", "+", "%2B", "/", "%2F")
	return r.Replace(s)
}

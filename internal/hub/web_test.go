package hub

import "testing"

// TestTemplatesParse: the templates, parsed on first use rather than at
// start-up, all parse, one per page.
func TestTemplatesParse(t *testing.T) {
	a := uiLoad()
	for _, p := range []string{"dashboard", "catalogue", "dataset", "search", "nodes", "login", "message"} {
		if a.pages[p] == nil {
			t.Errorf("no template for the %s page", p)
		}
	}
	if len(a.css) == 0 || len(a.cssHash) != 12 {
		t.Errorf("stylesheet: %d bytes, hash %q", len(a.css), a.cssHash)
	}
}

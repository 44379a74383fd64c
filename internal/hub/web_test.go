package hub

import (
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/lens"
)

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

// TestSearchChoicesAreLensValues: every choice the search form offers is
// a value lens accepts for its attribute, so no choice can end in an
// internal error.
func TestSearchChoicesAreLensValues(t *testing.T) {
	for _, l := range []struct {
		attr lens.Attr
		list []uiChoice
	}{{lens.Gender, uiGenders}, {lens.Diagnosis, uiDiagnoses}, {lens.Modality, uiModalities}, {lens.BodyPart, uiBodyParts}} {
		for _, c := range l.list {
			if _, err := lens.Is(l.attr, c.Code); err != nil {
				t.Errorf("%s choice %s (%s): %v", l.attr, c.Value, c.Code, err)
			}
		}
	}
}

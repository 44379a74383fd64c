package dcat

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestJSONLDShape(t *testing.T) {
	t.Parallel()
	c := testCatalogue()
	var buf bytes.Buffer
	if err := WriteJSONLD(&buf, c, nil); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context map[string]string `json:"@context"`
		Graph   []map[string]any  `json:"@graph"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JSON-LD is not JSON: %v", err)
	}
	if doc.Context["dcat"] != nsDCAT || doc.Context["healthdcatap"] != nsHealth || doc.Context["eucaim"] != nsEUCAIM {
		t.Errorf("@context: got %v, want the dcat, healthdcatap and eucaim prefixes", doc.Context)
	}
	var datasets []string
	for _, n := range doc.Graph {
		types, _ := n["@type"].([]any)
		if slices.Contains(types, any("dcat:Dataset")) {
			id, _ := n["@id"].(string)
			datasets = append(datasets, id)
			if n["dct:title"] == nil || n["healthdcatap:numberOfRecords"] == nil {
				t.Errorf("%s: title or number of records missing", id)
			}
		}
	}
	var want []string
	for _, d := range c.Datasets {
		want = append(want, c.DatasetIRI(d.ID))
	}
	if !slices.Equal(datasets, want) {
		t.Errorf("@graph datasets: got %q, want %q", datasets, want)
	}
	if !strings.Contains(buf.String(), "肺がん") || !strings.Contains(buf.String(), "Zoë") {
		t.Error("non-ASCII text is not kept as UTF-8")
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	c := testCatalogue()
	for _, format := range []string{FormatJSONLD, FormatTurtle} {
		var a, b bytes.Buffer
		if err := Write(&a, c, nil, format); err != nil {
			t.Fatal(err)
		}
		if err := Write(&b, c, nil, format); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: two writes of the same catalogue differ", format)
		}
	}
}

func TestTurtleString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`say "hi"`, `"say \"hi\""`},
		{`back\slash\`, `"back\\slash\\"`},
		{"a\nb\r\nc\td", `"a\nb\r\nc\td"`},
		{"bell\x07 del\x7f", `"bell\u0007 del\u007F"`},
		{"Zoë 肺がん 🩻", `"Zoë 肺がん 🩻"`},
		{`"""`, `"\"\"\""`},
	} {
		if got := turtleString(tc.in); got != tc.want {
			t.Errorf("turtleString(%q): got %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := english("bad \xff byte").value; got != "bad \uFFFD byte" {
		t.Errorf("invalid UTF-8: got %q, want U+FFFD in its place", got)
	}
}

func TestIRIs(t *testing.T) {
	t.Parallel()
	c := Catalogue{BaseURL: "https://hub.example.org/base/"}
	for _, tc := range []struct{ id, want string }{
		{"n1/ds1", "https://hub.example.org/base/datasets/n1/ds1"},
		{"n1/a b/c", "https://hub.example.org/base/datasets/n1/a%20b%2Fc"},
		{"kraków/x?y#z", "https://hub.example.org/base/datasets/krak%C3%B3w/x%3Fy%23z"},
		{`n/<"{|}>`, "https://hub.example.org/base/datasets/n/%3C%22%7B%7C%7D%3E"},
		{"no-slash", ""},
	} {
		if got := c.DatasetIRI(tc.id); got != tc.want {
			t.Errorf("DatasetIRI(%q): got %s, want %s", tc.id, got, tc.want)
		}
	}
	if got := c.CatalogueIRI(); got != "https://hub.example.org/base/catalogue" {
		t.Errorf("CatalogueIRI: got %s", got)
	}
	if got := c.FDPIRI(); got != "https://hub.example.org/base/fdp" {
		t.Errorf("FDPIRI: got %s", got)
	}
	if got := safeIRI("https://x.example/a b<c>\\d^e`f\x01"); got != "https://x.example/a%20b%3Cc%3E%5Cd%5Ee%60f%01" {
		t.Errorf("safeIRI: got %s", got)
	}
	if got := mailto("a.b+c@example.org"); got != "mailto:a.b+c@example.org" {
		t.Errorf("mailto: got %s", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := testCatalogue()
	if err := good.Validate(); err != nil {
		t.Fatalf("valid catalogue: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(c *Catalogue)
	}{
		{"no base URL", func(c *Catalogue) { c.BaseURL = "" }},
		{"relative base URL", func(c *Catalogue) { c.BaseURL = "/hub" }},
		{"base URL with query", func(c *Catalogue) { c.BaseURL = "https://hub.example.org/?x=1" }},
		{"ftp base URL", func(c *Catalogue) { c.BaseURL = "ftp://hub.example.org/" }},
		{"bad catalogue email", func(c *Catalogue) { c.ContactEmail = "Hub <hub@example.org>" }},
		{"ID without node", func(c *Catalogue) { c.Datasets[0].ID = "lung" }},
		{"ID with empty dataset", func(c *Catalogue) { c.Datasets[0].ID = "node/" }},
		{"node not matching ID", func(c *Catalogue) { c.Datasets[0].Node = "other" }},
		{"duplicate ID", func(c *Catalogue) { c.Datasets[2].ID = c.Datasets[0].ID }},
		{"tier 4", func(c *Catalogue) { c.Datasets[0].Tier = 4 }},
		{"negative count", func(c *Catalogue) { c.Datasets[0].Studies = -1 }},
		{"age range reversed", func(c *Catalogue) { c.Datasets[0].AgeMin, c.Datasets[0].AgeMax = intp(60), intp(40) }},
		{"access rights", func(c *Catalogue) { c.Datasets[0].AccessRights = "OPEN" }},
		{"access condition", func(c *Catalogue) { c.Datasets[0].AccessConditions = []string{"EMAIL_US"} }},
		{"sex", func(c *Catalogue) { c.Datasets[0].Sexes = []string{"X"} }},
		{"landing page", func(c *Catalogue) { c.Datasets[0].LandingPage = "javascript:alert(1)" }},
		{"contact URL", func(c *Catalogue) { c.Datasets[0].ContactURL = "www.example.org" }},
		{"contact email", func(c *Catalogue) { c.Datasets[0].ContactEmail = "not an address" }},
		{"licence", func(c *Catalogue) { c.Datasets[0].Licence = "CC BY 4.0" }},
		{"condition without code", func(c *Catalogue) { c.Datasets[0].Conditions = []Condition{{System: "ICD-10"}} }},
		{"HDAB without contact", func(c *Catalogue) { c.Datasets[0].HDAB = &Agent{Name: "Body"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCatalogue()
			tc.change(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate: got %v, want ErrInvalid", err)
			}
			var buf bytes.Buffer
			if err := WriteTurtle(&buf, c, nil); !errors.Is(err, ErrInvalid) || buf.Len() != 0 {
				t.Errorf("WriteTurtle: got %v after %d bytes, want ErrInvalid before writing", err, buf.Len())
			}
		})
	}
	var buf bytes.Buffer
	if err := Write(&buf, good, nil, "rdfxml"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown format: got %v, want ErrInvalid", err)
	}
	if err := WriteFDP(&buf, good, "n3"); !errors.Is(err, ErrInvalid) {
		t.Errorf("FDP in an unknown format: got %v, want ErrInvalid", err)
	}
}

func TestVocabularies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"female", "COM1001370"}, {"F", "COM1001370"}, {"Male", "COM1001366"},
		{"o", "COM1001288"}, {"unknown", "COM1002760"},
	} {
		if got, ok := birthSexIRI(tc.in); !ok || got != nsEUCAIM+tc.want {
			t.Errorf("birthSexIRI(%q): got %s %v, want eucaim:%s", tc.in, got, ok, tc.want)
		}
	}
	for _, tc := range []struct {
		c    Condition
		want string
	}{
		{Condition{Code: "C34.1", System: "ICD-10"}, "CLIN1000065"},
		{Condition{Code: "c50", System: "icd10"}, "CLIN1000060"},
		{Condition{Code: "C61.9", System: "ICD-O-3"}, "CLIN1000075"},
		{Condition{Code: "363406005", System: "SNOMED CT"}, "CLIN1000057"},
		{Condition{Code: "C71", System: "ICD-10"}, ""},
	} {
		got, _ := conditionIRI(tc.c)
		if want := tc.want; (want == "" && got != "") || (want != "" && got != nsEUCAIM+want) {
			t.Errorf("conditionIRI(%+v): got %q, want %q", tc.c, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"SIEMENS", "IMG1000044"}, {"Siemens Healthineers", "IMG1000044"},
		{"GE MEDICAL SYSTEMS", "IMG1000047"}, {"GE", "IMG1000047"}, {"Philips Medical Systems", "IMG1000046"},
		{"TOSHIBA", "IMG1000045"}, {"GEMINI Imaging", ""},
	} {
		got, _ := manufacturerIRI(tc.in)
		if want := tc.want; (want == "" && got != "") || (want != "" && got != nsEUCAIM+want) {
			t.Errorf("manufacturerIRI(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
	b, err := newBuilder(Catalogue{BaseURL: "https://hub.example.org"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{"CT", nsEUCAIM + "IMG1000026"}, {"mr", nsEUCAIM + "IMG1000038"}, {"PT", nsEUCAIM + "IMG1004451"},
		{"NM", dicomCodes + "NM"}, {"XA", dicomCodes + "XA"},
	} {
		if got := b.modality(tc.in); got != tc.want {
			t.Errorf("modality(%q): got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ accept, want string }{
		{"", FormatJSONLD},
		{"*/*", FormatJSONLD},
		{"text/turtle", FormatTurtle},
		{"TEXT/Turtle; charset=utf-8", FormatTurtle},
		{"application/ld+json", FormatJSONLD},
		{"application/json", FormatJSONLD},
		{"text/*", FormatTurtle},
		{"text/html", FormatJSONLD},
		{"application/ld+json;q=0.5, text/turtle", FormatTurtle},
		{"application/ld+json, text/turtle;q=0.9", FormatJSONLD},
		{"text/turtle;q=0.8, */*;q=0.9", FormatJSONLD},
		{"text/turtle;q=0.8, application/*;q=0.1", FormatTurtle},
		{"*/*;q=0.1, application/ld+json;q=0", FormatTurtle},
		{"text/turtle, application/ld+json", FormatJSONLD},
		{"text/turtle;q=abc", FormatJSONLD},
		{"application/x-turtle", FormatTurtle},
	} {
		if got := Negotiate(tc.accept); got != tc.want {
			t.Errorf("Negotiate(%q): got %s, want %s", tc.accept, got, tc.want)
		}
	}
	if got := MediaType(FormatTurtle); got != "text/turtle; charset=utf-8" {
		t.Errorf("MediaType(turtle): got %s", got)
	}
	if got := MediaType(FormatJSONLD); got != "application/ld+json" {
		t.Errorf("MediaType(jsonld): got %s", got)
	}
}

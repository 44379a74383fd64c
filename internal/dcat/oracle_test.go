package dcat

// Oracle tests: both serialisations are parsed by Debian's rdflib
// (python3-rdflib, testdata/rdf_oracle.py), which must find the same graph
// in each, with every mandatory property of the profile on every dataset,
// and the tricky text of the fixtures intact.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// python is Debian's own interpreter, which sees Debian's python3-rdflib.
const python = "/usr/bin/python3"

// needRDFLib skips the test when rdflib is missing on a developer's
// machine, and fails it in CI, which must never skip.
func needRDFLib(t *testing.T) {
	t.Helper()
	err := exec.Command(python, "-c", "import rdflib").Run()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("rdflib is not importable by %s: %v (Debian package python3-rdflib; "+
		"scripts/test-deps.sh installs it)", python, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// rdfTerm is a subject or object as the oracle reports it.
type rdfTerm struct {
	IRI      string  `json:"iri"`
	BNode    string  `json:"bnode"`
	Value    *string `json:"value"`
	Lang     string  `json:"lang"`
	Datatype string  `json:"datatype"`
}

// key identifies a subject.
func (t rdfTerm) key() string {
	if t.BNode != "" {
		return "_:" + t.BNode
	}
	return t.IRI
}

type rdfTriple struct {
	S rdfTerm
	P string
	O rdfTerm
}

func (t *rdfTriple) UnmarshalJSON(b []byte) error {
	var raw [3]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[0], &t.S); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[1], &t.P); err != nil {
		return err
	}
	return json.Unmarshal(raw[2], &t.O)
}

// rdfGraph is one parsed file.
type rdfGraph struct {
	Count    int                 `json:"count"`
	Datasets map[string][]string `json:"datasets"`
	Triples  []rdfTriple         `json:"triples"`
}

// objects returns the objects of a subject (IRI or "_:" blank node label)
// and predicate.
func (g *rdfGraph) objects(s, p string) []rdfTerm {
	var out []rdfTerm
	for _, t := range g.Triples {
		if t.S.key() == s && t.P == p {
			out = append(out, t.O)
		}
	}
	return out
}

// subjectsOfType returns the subjects typed with a class.
func (g *rdfGraph) subjectsOfType(class string) []string {
	var out []string
	for _, t := range g.Triples {
		if t.P == nsRDF+"type" && t.O.IRI == class {
			out = append(out, t.S.key())
		}
	}
	slices.Sort(out)
	return out
}

// has reports whether a subject has a predicate.
func (g *rdfGraph) has(s, p string) bool { return len(g.objects(s, p)) > 0 }

type rdfResult struct {
	Graphs     []rdfGraph `json:"graphs"`
	Isomorphic *bool      `json:"isomorphic"`
}

// oracle writes each output to a file and parses them all with rdflib; with
// two outputs it also reports whether the graphs are isomorphic.
func oracle(t *testing.T, outputs ...struct{ format, text string }) rdfResult {
	t.Helper()
	needRDFLib(t)
	dir := t.TempDir()
	var args []string
	for i, o := range outputs {
		path := filepath.Join(dir, fmt.Sprintf("out%d.%s", i, o.format))
		if err := os.WriteFile(path, []byte(o.text), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, o.format, path)
	}
	cmd := exec.Command(python, append([]string{filepath.Join("testdata", "rdf_oracle.py")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rdflib: %v\n%s", err, stderr.String())
	}
	var res rdfResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("oracle output: %v", err)
	}
	return res
}

// both returns the Turtle and the JSON-LD written by the two functions.
func both(t *testing.T, write func(format string, w *bytes.Buffer) error) []struct{ format, text string } {
	t.Helper()
	var ttl, jsonld bytes.Buffer
	if err := write(FormatTurtle, &ttl); err != nil {
		t.Fatalf("turtle: %v", err)
	}
	if err := write(FormatJSONLD, &jsonld); err != nil {
		t.Fatalf("json-ld: %v", err)
	}
	return []struct{ format, text string }{{"turtle", ttl.String()}, {"json-ld", jsonld.String()}}
}

// checkSame fails unless rdflib found the same graph in both outputs.
func checkSame(t *testing.T, res rdfResult) {
	t.Helper()
	if len(res.Graphs) != 2 {
		t.Fatalf("got %d graphs, want 2", len(res.Graphs))
	}
	tc, jc := res.Graphs[0].Count, res.Graphs[1].Count
	t.Logf("triples: Turtle %d, JSON-LD %d, isomorphic %v", tc, jc, res.Isomorphic != nil && *res.Isomorphic)
	if tc == 0 || tc != jc {
		t.Errorf("triple counts: Turtle %d, JSON-LD %d, want equal and above zero", tc, jc)
	}
	if res.Isomorphic == nil || !*res.Isomorphic {
		t.Error("the Turtle and JSON-LD graphs are not isomorphic")
	}
}

func intp(n int) *int { return &n }

// testCatalogue has three datasets: a full one with quotes, backslashes,
// newlines and non-ASCII names; a minimal one (placeholders) whose ID needs
// percent-encoding; and one with controls, CRLF, an emoji, unmapped codes
// and the same node as the first.
func testCatalogue() Catalogue {
	issued := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	modified := time.Date(2026, 2, 3, 4, 5, 6, 0, time.FixedZone("CET", 3600))
	return Catalogue{
		BaseURL:      "https://hub.example.org/mosaic/",
		Title:        `Mosaic "test" catalogue`,
		Description:  "Line one\nline two \\ with a backslash",
		Publisher:    "Fédération Mosaïque",
		ContactEmail: "catalogue@example.org",
		Issued:       issued,
		Modified:     modified,
		Datasets: []Dataset{
			{
				ID:               "saint-louis/lung-ct-2024",
				Title:            `Lung "LIDC-like" CT \ PET cohort`,
				Description:      "First line.\nSecond line with a tab\tand a quote \" and a backslash \\ at the end\\",
				Version:          "2.1.0",
				Keywords:         []string{"lung cancer", "肺がん", `Ødegård's "keyword"`},
				Node:             "saint-louis",
				NodeTitle:        "Hôpital Saint-Louis — AP-HP",
				PublisherURL:     "https://saint-louis.example.org/",
				ContactName:      "Zoë Łukasiewicz-Ødegård",
				ContactEmail:     "zoe.lukasiewicz@saint-louis.example.org",
				ContactURL:       "https://saint-louis.example.org/imaging?lang=fr&x=1",
				Licence:          "CC-BY-4.0",
				AccessRights:     "RESTRICTED",
				AccessConditions: []string{"REMOTE_PROCESSING", "in-situ processing"},
				Tier:             2,
				Subjects:         1012,
				Studies:          2380,
				Sexes:            []string{"female", "male"},
				AgeMin:           intp(23),
				AgeMax:           intp(87),
				Conditions: []Condition{
					{Code: "C34.1", System: "ICD-10", Label: "lung cancer"},
					{Code: "363358000", System: "SNOMED CT", Label: "Malignant tumour of lung"},
				},
				Modalities:    []string{"CT", "PT"},
				BodyParts:     []string{"CHEST", "LUNG"},
				Manufacturers: []string{"SIEMENS", "GE MEDICAL SYSTEMS"},
				HDAB:          &Agent{Name: "Health Data Hub", URL: "https://www.health-data-hub.fr/"},
				Issued:        issued,
				Modified:      modified,
				LandingPage:   "https://hub.example.org/mosaic/datasets/saint-louis/lung-ct-2024",
			},
			{
				ID: "kraków/mg ümlaut/2",
			},
			{
				ID:            "saint-louis/rare-sarcoma",
				Title:         `Ends with a backslash \`,
				Description:   "Triple quotes \"\"\" and ''' inside;\r\nCRLF line, a control \x01 character, an emoji 🩻.",
				Licence:       "https://creativecommons.org/licenses/by-nc/4.0/",
				AccessRights:  "public",
				Tier:          3,
				Subjects:      12,
				Studies:       40,
				Sexes:         []string{"O", "unknown"},
				Conditions:    []Condition{{Code: "424413001", System: "SNOMED-CT", Label: "Ewing sarcoma"}},
				Modalities:    []string{"MR", "XA", "mr"},
				BodyParts:     []string{"KNEE"},
				Manufacturers: []string{"Ñandú Imaging {Co.}"},
				Provenance:    "Collected in the \"SARC\" trial;\ncurated by hand.",
			},
		},
	}
}

func TestOracleCatalogue(t *testing.T) {
	t.Parallel()
	c := testCatalogue()
	res := oracle(t, both(t, func(format string, w *bytes.Buffer) error { return Write(w, c, nil, format) })...)
	checkSame(t, res)
	for gi, g := range res.Graphs {
		name := []string{"Turtle", "JSON-LD"}[gi]
		t.Run(name, func(t *testing.T) { checkCatalogueGraph(t, c, &g) })
	}
}

func checkCatalogueGraph(t *testing.T, c Catalogue, g *rdfGraph) {
	var want []string
	for _, d := range c.Datasets {
		want = append(want, c.DatasetIRI(d.ID))
	}
	slices.Sort(want)
	if got := g.subjectsOfType(nsDCAT + "Dataset"); !slices.Equal(got, want) {
		t.Fatalf("datasets: got %q, want %q", got, want)
	}
	for _, id := range want {
		for _, p := range MandatoryDatasetProperties {
			if !slices.Contains(g.Datasets[id], p.IRI) {
				t.Errorf("%s: mandatory %s (%s) missing", id, p.Name, p.IRI)
			}
		}
		checkDatasetLinks(t, g, id)
	}

	// The catalogue.
	cat := c.CatalogueIRI()
	if got := g.subjectsOfType(nsDCAT + "Catalog"); !slices.Equal(got, []string{cat}) {
		t.Fatalf("catalogues: got %q, want %q", got, cat)
	}
	for _, p := range MandatoryCatalogueProperties {
		if !g.has(cat, p.IRI) {
			t.Errorf("catalogue: mandatory %s missing", p.Name)
		}
	}
	if n := len(g.objects(cat, nsDCAT+"dataset")); n != 3 {
		t.Errorf("catalogue lists %d datasets, want 3", n)
	}
	checkLiteral(t, g, cat, nsDCT+"title", c.Title, "en", "")
	checkLiteral(t, g, cat, nsDCT+"description", c.Description, "en", "")
	checkLiteral(t, g, cat, nsDCT+"modified", "2026-02-03T03:05:06Z", "", nsXSD+"dateTime")
	checkAgent(t, g, cat)

	// Dataset 1: every value given, tricky text.
	d := c.Datasets[0]
	id := c.DatasetIRI(d.ID)
	checkLiteral(t, g, id, nsDCT+"title", d.Title, "en", "")
	checkLiteral(t, g, id, nsDCT+"description", d.Description, "en", "")
	checkLiteral(t, g, id, nsDCT+"identifier", id, "", "")
	checkLiteral(t, g, id, nsDCAT+"version", "2.1.0", "", "")
	checkLiteral(t, g, id, nsHealth+"numberOfUniqueIndividuals", "1012", "", nsXSD+"nonNegativeInteger")
	checkLiteral(t, g, id, nsHealth+"numberOfRecords", "2380", "", nsXSD+"nonNegativeInteger")
	checkLiteral(t, g, id, nsHealth+"minTypicalAge", "20", "", nsXSD+"nonNegativeInteger")
	checkLiteral(t, g, id, nsHealth+"maxTypicalAge", "90", "", nsXSD+"nonNegativeInteger")
	checkLiteral(t, g, id, nsHealth+"hasStructuredData", "false", "", nsXSD+"boolean")
	checkLiteral(t, g, id, nsDCT+"issued", "2025-01-02T03:04:05Z", "", nsXSD+"dateTime")
	for _, k := range d.Keywords {
		checkLiteral(t, g, id, nsDCAT+"keyword", k, "en", "")
	}
	checkIRIs(t, g, id, nsDCT+"accessRights", accessRights+"RESTRICTED")
	checkIRIs(t, g, id, nsDCAT+"theme", themeHealth)
	checkIRIs(t, g, id, nsDCATAP+"applicableLegislation", ehdsRegulation)
	checkIRIs(t, g, id, nsEUCAIM+"hasBirthSex", nsEUCAIM+"COM1001370", nsEUCAIM+"COM1001366")
	checkIRIs(t, g, id, nsEUCAIM+"hasCondition", nsEUCAIM+"CLIN1000065")
	checkIRIs(t, g, id, nsEUCAIM+"hasImageModality", nsEUCAIM+"IMG1000026", nsEUCAIM+"IMG1004451")
	checkIRIs(t, g, id, nsEUCAIM+"hasEquipmentManufacturer", nsEUCAIM+"IMG1000044", nsEUCAIM+"IMG1000047")
	checkIRIs(t, g, id, nsEUCAIM+"hasImageBodyPart", nsEUCAIM+"BP1000113",
		"https://hub.example.org/mosaic/vocab/body-part/CHEST")
	checkIRIs(t, g, id, nsDCAT+"landingPage", d.LandingPage)
	for _, p := range TransitionalDatasetProperties {
		if !slices.Contains(g.Datasets[id], p.IRI) {
			t.Errorf("%s: %s missing although the dataset names one", id, p.Name)
		}
	}
	hdab := g.objects(id, nsHealth+"hdab")
	if len(hdab) != 1 || !g.has(hdab[0].key(), nsFOAF+"name") || !g.has(hdab[0].key(), nsCV+"contactPoint") {
		t.Errorf("%s: health data access body needs a name and a contact point", id)
	}
	cp := g.objects(id, nsDCAT+"contactPoint")
	if len(cp) != 1 {
		t.Fatalf("%s: %d contact points, want 1", id, len(cp))
	}
	checkLiteral(t, g, cp[0].key(), nsVCARD+"fn", d.ContactName, "", "")
	checkIRIs(t, g, cp[0].key(), nsVCARD+"hasEmail", "mailto:"+d.ContactEmail)
	checkIRIs(t, g, cp[0].key(), nsVCARD+"hasURL", d.ContactURL)
	pub := g.objects(id, nsDCT+"publisher")
	if len(pub) != 1 {
		t.Fatalf("%s: %d publishers, want 1", id, len(pub))
	}
	checkLiteral(t, g, pub[0].IRI, nsFOAF+"name", d.NodeTitle, "", "")
	dist := id + "/distribution"
	checkIRIs(t, g, dist, nsDCT+"rights", accessConditions+"REMOTE_PROCESSING", accessConditions+"IN_SITU_PROCESSING")
	checkIRIs(t, g, dist, nsDCT+"license", "http://spdx.org/licenses/CC-BY-4.0")

	// Dataset 2: placeholders.
	d = c.Datasets[1]
	id = c.DatasetIRI(d.ID)
	if want := "https://hub.example.org/mosaic/datasets/krak%C3%B3w/mg%20%C3%BCmlaut%2F2"; id != want {
		t.Errorf("dataset IRI: got %s, want %s", id, want)
	}
	checkLiteral(t, g, id, nsDCT+"title", d.ID, "en", "")
	checkLiteral(t, g, id, nsDCAT+"version", "1.0.0", "", "")
	checkLiteral(t, g, id, nsHealth+"numberOfUniqueIndividuals", "0", "", nsXSD+"nonNegativeInteger")
	checkIRIs(t, g, id, nsDCT+"accessRights", accessRights+"NON_PUBLIC")
	checkIRIs(t, g, id, nsEUCAIM+"hasBirthSex", nsEUCAIM+"COM1002760")
	checkIRIs(t, g, id, nsEUCAIM+"interoperabilityLevel", "https://hub.example.org/mosaic/vocab/interoperability-level/tier-1")
	checkIRIs(t, g, id, nsEUCAIM+"hasCondition", "https://hub.example.org/mosaic/vocab/condition/not-reported")
	checkIRIs(t, g, id, nsEUCAIM+"collectionMethod", "https://hub.example.org/mosaic/vocab/collection-method/not-reported")
	checkLiteral(t, g, id, nsDCAT+"keyword", "cancer imaging", "en", "")
	if g.has(id, nsHealth+"hdab") {
		t.Errorf("%s: health data access body written without one (no placeholder allowed)", id)
	}
	cp = g.objects(id, nsDCAT+"contactPoint")
	if len(cp) != 1 {
		t.Fatalf("%s: %d contact points, want 1", id, len(cp))
	}
	checkLiteral(t, g, cp[0].key(), nsVCARD+"fn", "kraków", "", "")
	checkIRIs(t, g, cp[0].key(), nsVCARD+"hasURL", "https://hub.example.org/mosaic/nodes/krak%C3%B3w")

	// Dataset 3: controls, CRLF, an emoji, unmapped codes, the first node.
	d = c.Datasets[2]
	id = c.DatasetIRI(d.ID)
	checkLiteral(t, g, id, nsDCT+"title", d.Title, "en", "")
	checkLiteral(t, g, id, nsDCT+"description", d.Description, "en", "")
	checkIRIs(t, g, id, nsDCT+"accessRights", accessRights+"PUBLIC")
	checkIRIs(t, g, id, nsEUCAIM+"hasBirthSex", nsEUCAIM+"COM1001288", nsEUCAIM+"COM1002760")
	checkIRIs(t, g, id, nsEUCAIM+"hasCondition", snomedCT+"424413001")
	checkIRIs(t, g, id, nsEUCAIM+"hasImageModality", nsEUCAIM+"IMG1000038", dicomCodes+"XA")
	manu := "https://hub.example.org/mosaic/vocab/manufacturer/%C3%91and%C3%BA%20Imaging%20%7BCo.%7D"
	checkIRIs(t, g, id, nsEUCAIM+"hasEquipmentManufacturer", manu)
	checkIRIs(t, g, manu, nsRDFS+"subClassOf", classManufacturer)
	checkLiteral(t, g, manu, nsSKOS+"notation", "Ñandú Imaging {Co.}", "", "")
	checkIRIs(t, g, id, nsDCT+"publisher", "https://hub.example.org/mosaic/nodes/saint-louis")
	prov := g.objects(id, nsDCT+"provenance")
	if len(prov) != 1 {
		t.Fatalf("%s: %d provenance statements, want 1", id, len(prov))
	}
	checkLiteral(t, g, prov[0].key(), nsRDFS+"label", d.Provenance, "en", "")
}

// checkDatasetLinks checks the resources a dataset points to: its
// distribution, publisher, contact point and minted terms.
func checkDatasetLinks(t *testing.T, g *rdfGraph, id string) {
	t.Helper()
	for _, dist := range g.objects(id, nsDCAT+"distribution") {
		if !slices.Contains(g.subjectsOfType(nsDCAT+"Distribution"), dist.IRI) {
			t.Errorf("%s: distribution %s is not described", id, dist.IRI)
		}
		for _, p := range MandatoryDistributionProperties {
			if !g.has(dist.IRI, p.IRI) {
				t.Errorf("%s: distribution: mandatory %s missing", id, p.Name)
			}
		}
	}
	for _, cp := range g.objects(id, nsDCAT+"contactPoint") {
		if !g.has(cp.key(), nsVCARD+"hasEmail") && !g.has(cp.key(), nsVCARD+"hasURL") {
			t.Errorf("%s: contact point has neither email nor URL", id)
		}
	}
	for _, pub := range g.objects(id, nsDCT+"publisher") {
		checkAgentIRI(t, g, pub.IRI)
	}
	for _, p := range []struct{ pred, class string }{
		{nsEUCAIM + "interoperabilityLevel", classTier},
		{nsEUCAIM + "collectionMethod", classCollectionMethod},
		{nsEUCAIM + "hasCondition", classCondition},
		{nsEUCAIM + "hasImageModality", classModality},
		{nsEUCAIM + "hasEquipmentManufacturer", classManufacturer},
		{nsEUCAIM + "hasImageBodyPart", classBodyPart},
	} {
		for _, o := range g.objects(id, p.pred) {
			if !strings.HasPrefix(o.IRI, "https://hub.example.org/mosaic/vocab/") {
				continue
			}
			checkIRIs(t, g, o.IRI, nsRDFS+"subClassOf", p.class)
			if !g.has(o.IRI, nsRDFS+"label") {
				t.Errorf("minted term %s has no label", o.IRI)
			}
		}
	}
}

// checkAgent checks the publisher of a resource.
func checkAgent(t *testing.T, g *rdfGraph, s string) {
	t.Helper()
	pub := g.objects(s, nsDCT+"publisher")
	if len(pub) != 1 {
		t.Fatalf("%s: %d publishers, want 1", s, len(pub))
	}
	checkAgentIRI(t, g, pub[0].IRI)
}

// checkAgentIRI checks an agent's mandatory name and contact point.
func checkAgentIRI(t *testing.T, g *rdfGraph, agent string) {
	t.Helper()
	if !g.has(agent, nsFOAF+"name") {
		t.Errorf("agent %s has no foaf:name", agent)
	}
	cps := g.objects(agent, nsCV+"contactPoint")
	if len(cps) != 1 {
		t.Fatalf("agent %s: %d contact points, want 1", agent, len(cps))
	}
	if !g.has(cps[0].key(), nsCV+"contactPage") && !g.has(cps[0].key(), nsCV+"email") {
		t.Errorf("agent %s: contact point has neither page nor email", agent)
	}
}

// checkLiteral checks that s has a literal with this value, language and
// datatype for p.
func checkLiteral(t *testing.T, g *rdfGraph, s, p, value, lang, datatype string) {
	t.Helper()
	var got []string
	for _, o := range g.objects(s, p) {
		if o.Value == nil {
			continue
		}
		if *o.Value == value && o.Lang == lang && o.Datatype == datatype {
			return
		}
		got = append(got, strconv.Quote(*o.Value)+"@"+o.Lang+"^^"+o.Datatype)
	}
	t.Errorf("%s %s: got %v, want %q@%s^^%s", s, p, got, value, lang, datatype)
}

// checkIRIs checks that the IRI objects of s and p are exactly want.
func checkIRIs(t *testing.T, g *rdfGraph, s, p string, want ...string) {
	t.Helper()
	var got []string
	for _, o := range g.objects(s, p) {
		got = append(got, o.IRI)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s %s: got %q, want %q", s, p, got, want)
	}
}

func TestOracleOneDataset(t *testing.T) {
	t.Parallel()
	c := testCatalogue()
	for _, d := range c.Datasets {
		t.Run(d.ID, func(t *testing.T) {
			res := oracle(t, both(t, func(format string, w *bytes.Buffer) error { return Write(w, c, &d, format) })...)
			checkSame(t, res)
			id := c.DatasetIRI(d.ID)
			for _, g := range res.Graphs {
				if got := g.subjectsOfType(nsDCAT + "Dataset"); !slices.Equal(got, []string{id}) {
					t.Errorf("datasets: got %q, want only %s", got, id)
				}
				if got := g.subjectsOfType(nsDCAT + "Catalog"); len(got) != 0 {
					t.Errorf("a per-dataset export holds catalogues %q", got)
				}
				for _, tr := range g.Triples {
					for _, other := range c.Datasets {
						o := c.DatasetIRI(other.ID)
						if other.ID != d.ID && (strings.HasPrefix(tr.S.IRI, o) || strings.HasPrefix(tr.O.IRI, o)) {
							t.Errorf("a per-dataset export mentions %s", o)
						}
					}
				}
				for _, p := range MandatoryDatasetProperties {
					if !slices.Contains(g.Datasets[id], p.IRI) {
						t.Errorf("mandatory %s missing", p.Name)
					}
				}
				checkDatasetLinks(t, &g, id)
			}
		})
	}
}

func TestOracleFDP(t *testing.T) {
	t.Parallel()
	c := testCatalogue()
	res := oracle(t, both(t, func(format string, w *bytes.Buffer) error { return WriteFDP(w, c, format) })...)
	checkSame(t, res)
	fdp := c.FDPIRI()
	for _, g := range res.Graphs {
		if got := g.subjectsOfType(nsFDPO + "FAIRDataPoint"); !slices.Equal(got, []string{fdp}) {
			t.Fatalf("FAIR Data Points: got %q, want %s", got, fdp)
		}
		checkIRIs(t, &g, fdp, nsFDPO+"metadataCatalog", c.CatalogueIRI())
		checkIRIs(t, &g, fdp, nsFDPO+"conformsToFdpSpec", fdpSpec)
		checkIRIs(t, &g, fdp, nsDCT+"license", "http://spdx.org/licenses/CC0-1.0")
		checkLiteral(t, &g, fdp, nsFDPO+"metadataIssued", "2025-01-02T03:04:05Z", "", nsXSD+"dateTime")
		checkLiteral(t, &g, fdp, nsFDPO+"metadataModified", "2026-02-03T03:05:06Z", "", nsXSD+"dateTime")
		for _, p := range []string{nsDCT + "title", nsDCT + "publisher", nsDCT + "conformsTo", nsFDPO + "metadataIdentifier"} {
			if !g.has(fdp, p) {
				t.Errorf("FAIR Data Point: %s missing", p)
			}
		}
		checkAgent(t, &g, fdp)
		if got := g.subjectsOfType(nsDCAT + "Catalog"); !slices.Equal(got, []string{c.CatalogueIRI()}) {
			t.Errorf("catalogues: got %q, want %s", got, c.CatalogueIRI())
		}
	}
}

package dcat

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CatalogueIRI returns the IRI of the catalogue, or "" if BaseURL is not
// usable.
func (c Catalogue) CatalogueIRI() string {
	base, err := c.base()
	if err != nil {
		return ""
	}
	return base + "/catalogue"
}

// FDPIRI returns the IRI of the FAIR Data Point root, or "" if BaseURL is
// not usable.
func (c Catalogue) FDPIRI() string {
	base, err := c.base()
	if err != nil {
		return ""
	}
	return base + "/fdp"
}

// DatasetIRI returns the IRI of the dataset with the given ID
// ("<node>/<dataset>"), each part percent-encoded as one path segment, or
// "" if BaseURL or the ID is not usable.
func (c Catalogue) DatasetIRI(id string) string {
	base, err := c.base()
	node, name, ok := strings.Cut(id, "/")
	if err != nil || !ok || node == "" || name == "" {
		return ""
	}
	return base + "/datasets/" + segment(node) + "/" + segment(name)
}

// segment percent-encodes s as one path segment (slashes included).
func segment(s string) string { return safeIRI(url.PathEscape(clean(s))) }

// builder turns a catalogue into a document.
type builder struct {
	c    Catalogue
	base string
	doc  *document
	// nodes holds, per node, the first non-empty title and publisher URL
	// among the exported datasets, so that a node's agent is described
	// once and the same way whichever dataset comes first.
	nodes map[string]nodeInfo
}

type nodeInfo struct{ title, url string }

func newBuilder(c Catalogue, datasets []Dataset) (*builder, error) {
	base, err := c.base()
	if err != nil {
		return nil, err
	}
	b := &builder{c: c, base: base, doc: newDocument(), nodes: map[string]nodeInfo{}}
	for i := range datasets {
		d := &datasets[i]
		n := b.nodes[nodeOf(d)]
		if n.title == "" {
			n.title = strings.TrimSpace(d.NodeTitle)
		}
		if n.url == "" {
			n.url = d.PublisherURL
		}
		b.nodes[nodeOf(d)] = n
	}
	return b, nil
}

// nodeOf returns the node part of a dataset's ID.
func nodeOf(d *Dataset) string {
	node, _, _ := strings.Cut(d.ID, "/")
	return node
}

func (b *builder) catalogueIRI() string { return b.base + "/catalogue" }
func (b *builder) publisherIRI() string { return b.base + "/publisher" }
func (b *builder) nodeIRI(node string) string {
	return b.base + "/nodes/" + segment(node)
}

// vocab returns the IRI of a term minted by the hub under /vocab/.
func (b *builder) vocab(kind, value string) string {
	return b.base + "/vocab/" + kind + "/" + segment(value)
}

// catalogue describes the dcat:Catalog and its publisher.
func (b *builder) catalogue(datasets []Dataset) {
	c := b.c
	r, _ := b.doc.describe(b.catalogueIRI())
	r.types(nsDCAT + "Catalog")
	r.add(nsDCT+"title", english(orDefault(c.Title, "Mosaic public catalogue")))
	r.add(nsDCT+"description", english(orDefault(c.Description,
		"Cancer imaging datasets that the data holders of this Mosaic federation describe "+
			"from the data their nodes hold.")))
	r.add(nsDCATAP+"applicableLegislation", iri(ehdsRegulation))
	r.add(nsDCT+"publisher", iri(b.publisherIRI()))
	r.add(nsFOAF+"homepage", iri(b.base+"/"))
	r.add(nsDCT+"language", iri(languageEnglish))
	lic, _ := licenceIRI(orDefault(c.Licence, defaultLicence))
	r.add(nsDCT+"license", iri(lic))
	r.add(nsDCAT+"themeTaxonomy", iri(dataThemes))
	b.dates(r, nsDCT+"issued", nsDCT+"modified", c.Issued, c.Modified)
	for i := range datasets {
		r.add(nsDCAT+"dataset", iri(b.c.DatasetIRI(datasets[i].ID)))
	}
	b.publisher()
}

// publisher describes the hub's operator, the publisher of the catalogue
// and of the FAIR Data Point.
func (b *builder) publisher() {
	r, fresh := b.doc.describe(b.publisherIRI())
	if !fresh {
		return
	}
	r.types(nsFOAF+"Agent", nsFOAF+"Organization")
	r.add(nsFOAF+"name", plain(orDefault(b.c.Publisher, "Mosaic hub")))
	cp := &resource{}
	cp.types(nsCV + "ContactPoint")
	cp.add(nsCV+"contactPage", iri(safeIRI(orDefault(b.c.ContactURL, b.base+"/"))))
	if b.c.ContactEmail != "" {
		cp.add(nsCV+"email", plain(b.c.ContactEmail))
	}
	r.add(nsCV+"contactPoint", blank(cp))
}

// dates adds issued and modified dates that are set.
func (b *builder) dates(r *resource, issuedPred, modifiedPred string, issued, modified time.Time) {
	if !issued.IsZero() {
		r.add(issuedPred, dateTime(issued))
	}
	if !modified.IsZero() {
		r.add(modifiedPred, dateTime(modified))
	}
}

// dateTime is an xsd:dateTime literal in UTC, to the second.
func dateTime(t time.Time) term {
	return typed(t.UTC().Format("2006-01-02T15:04:05Z"), nsXSD+"dateTime")
}

func count(n int) term { return typed(strconv.Itoa(n), nsXSD+"nonNegativeInteger") }

// dataset describes one dataset with its distribution and publisher.
func (b *builder) dataset(d *Dataset) {
	id := b.c.DatasetIRI(d.ID)
	node := nodeOf(d)
	nodeTitle := orDefault(b.nodes[node].title, node)

	r, _ := b.doc.describe(id)
	r.types(nsDCAT + "Dataset")

	// Identification.
	r.add(nsDCT+"identifier", plain(id))
	r.add(nsDCT+"title", english(orDefault(strings.TrimSpace(d.Title), d.ID)))
	r.add(nsDCT+"description", english(orDefault(strings.TrimSpace(d.Description), summary(d, nodeTitle))))
	r.add(nsDCAT+"version", plain(version(d)))
	r.add(nsEUCAIM+"interoperabilityLevel", iri(b.tier(d.Tier)))
	r.add(nsDCAT+"distribution", iri(b.distribution(d, id)))
	r.add(nsDCAT+"contactPoint", blank(b.contact(d, nodeTitle)))
	if d.LandingPage != "" {
		r.add(nsDCAT+"landingPage", iri(safeIRI(d.LandingPage)))
	}

	// Classification.
	r.add(nsDCAT+"theme", iri(themeHealth))
	r.add(nsHealth+"healthCategory", iri(healthCategoryEHR))
	r.add(nsHealth+"healthTheme", iri(healthThemeCancer))
	r.add(nsDCT+"type", iri(pseudonymisedData))

	// Access and rights.
	rights, _ := accessRightIRI(d.AccessRights)
	r.add(nsDCT+"accessRights", iri(rights))
	r.add(nsDCATAP+"applicableLegislation", iri(ehdsRegulation))

	// Publisher and Health Data Access Body.
	r.add(nsDCT+"publisher", iri(b.node(node, nodeTitle)))
	if h := d.HDAB; h != nil {
		a := &resource{}
		a.types(nsFOAF + "Agent")
		a.add(nsFOAF+"name", plain(strings.TrimSpace(h.Name)))
		cp := &resource{}
		cp.types(nsCV + "ContactPoint")
		if h.URL != "" {
			cp.add(nsCV+"contactPage", iri(safeIRI(h.URL)))
		}
		if h.Email != "" {
			cp.add(nsCV+"email", plain(h.Email))
		}
		a.add(nsCV+"contactPoint", blank(cp))
		r.add(nsHealth+"hdab", blank(a))
	}

	// Subjects and population.
	r.add(nsHealth+"hasStructuredData", typed("false", nsXSD+"boolean"))
	r.add(nsHealth+"numberOfUniqueIndividuals", count(d.Subjects))
	r.add(nsHealth+"numberOfRecords", count(d.Studies))
	if len(d.Sexes) == 0 {
		s, _ := birthSexIRI("unknown")
		r.add(nsEUCAIM+"hasBirthSex", iri(s))
	}
	for _, s := range d.Sexes {
		s, _ := birthSexIRI(s)
		r.add(nsEUCAIM+"hasBirthSex", iri(s))
	}
	if d.AgeMin != nil {
		r.add(nsHealth+"minTypicalAge", count(*d.AgeMin/5*5))
	}
	if d.AgeMax != nil {
		r.add(nsHealth+"maxTypicalAge", count((*d.AgeMax+4)/5*5))
	}
	if len(d.Conditions) == 0 {
		r.add(nsEUCAIM+"hasCondition", iri(b.placeholder("condition", classCondition)))
	} else {
		r.add(nsEUCAIM+"hasCondition", iri(b.condition(d.Conditions[0])))
	}
	for _, c := range d.Conditions {
		r.add(nsHealth+"hasCodeValues", plain(strings.TrimSpace(c.System)+": "+strings.TrimSpace(c.Code)))
	}
	r.add(nsEUCAIM+"collectionMethod", iri(b.placeholder("collection-method", classCollectionMethod)))

	// Imaging.
	b.coded(r, nsEUCAIM+"hasImageModality", "image-modality", classModality, d.Modalities, b.modality)
	b.coded(r, nsEUCAIM+"hasEquipmentManufacturer", "manufacturer", classManufacturer, d.Manufacturers, b.manufacturer)
	b.coded(r, nsEUCAIM+"hasImageBodyPart", "body-part", classBodyPart, d.BodyParts, b.bodyPart)

	// Keywords and provenance.
	for _, k := range keywords(d) {
		r.add(nsDCAT+"keyword", english(k))
	}
	prov := &resource{}
	prov.types(nsDCT + "ProvenanceStatement")
	prov.add(nsRDFS+"label", english(orDefault(strings.TrimSpace(d.Provenance), provenance(nodeTitle))))
	r.add(nsDCT+"provenance", blank(prov))

	b.dates(r, nsDCT+"issued", nsDCT+"modified", d.Issued, d.Modified)
}

// coded adds one statement per value, mapped by iriOf, or the placeholder
// of kind when there is no value.
func (b *builder) coded(r *resource, pred, kind, class string, values []string, iriOf func(string) string) {
	n := 0
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			continue
		}
		r.add(pred, iri(iriOf(v)))
		n++
	}
	if n == 0 {
		r.add(pred, iri(b.placeholder(kind, class)))
	}
}

// tier returns the minted term of an interoperability tier.
func (b *builder) tier(n int) string {
	if n == 0 {
		n = 1
	}
	id := b.vocab("interoperability-level", "tier-"+strconv.Itoa(n))
	if t, fresh := b.doc.describe(id); fresh {
		t.add(nsRDFS+"subClassOf", iri(classTier))
		t.add(nsRDFS+"label", english("Tier "+strconv.Itoa(n)))
		t.add(nsSKOS+"notation", plain(strconv.Itoa(n)))
		t.add(nsRDFS+"comment", english("EUCAIM interoperability tier, minted by Mosaic until it "+
			"uses the EUCAIM hyperontology's own concept."))
	}
	return id
}

// placeholder returns the minted term for a mandatory value the node did
// not report.
func (b *builder) placeholder(kind, class string) string {
	id := b.vocab(kind, "not-reported")
	if t, fresh := b.doc.describe(id); fresh {
		t.add(nsRDFS+"subClassOf", iri(class))
		t.add(nsRDFS+"label", english("Not reported by the data holder"))
		t.add(nsRDFS+"comment", english("Placeholder minted by Mosaic for a mandatory "+
			"EUCAIM DCAT-AP value that the node did not report."))
	}
	return id
}

// minted returns a term minted for a code that has no EUCAIM concept in
// Mosaic's tables, declared a subclass of the class the profile asks for.
func (b *builder) minted(kind, class, code, label string) string {
	id := b.vocab(kind, code)
	if t, fresh := b.doc.describe(id); fresh {
		t.add(nsRDFS+"subClassOf", iri(class))
		t.add(nsRDFS+"label", plain(orDefault(label, code)))
		t.add(nsSKOS+"notation", plain(code))
	}
	return id
}

func (b *builder) modality(v string) string {
	code := strings.ToUpper(strings.TrimSpace(v))
	if c, ok := modalities[code]; ok {
		return nsEUCAIM + c
	}
	return dicomCodes + segment(code)
}

func (b *builder) bodyPart(v string) string {
	code := strings.ToUpper(strings.TrimSpace(v))
	if c, ok := bodyParts[code]; ok {
		return nsEUCAIM + c
	}
	return b.minted("body-part", classBodyPart, code, "")
}

func (b *builder) manufacturer(v string) string {
	if id, ok := manufacturerIRI(v); ok {
		return id
	}
	name := strings.TrimSpace(v)
	return b.minted("manufacturer", classManufacturer, name, "")
}

func (b *builder) condition(c Condition) string {
	if id, ok := conditionIRI(c); ok {
		return id
	}
	code := strings.ToUpper(strings.TrimSpace(c.Code))
	sys := codingSystem(c.System)
	if sys == "SNOMEDCT" || sys == "SCT" {
		return snomedCT + segment(code)
	}
	return b.minted("condition/"+segment(strings.ToLower(sys)), classCondition, code, strings.TrimSpace(c.Label))
}

// distribution describes the dataset's distribution and returns its IRI.
func (b *builder) distribution(d *Dataset, datasetIRI string) string {
	id := datasetIRI + "/distribution"
	r, _ := b.doc.describe(id)
	r.types(nsDCAT + "Distribution")
	r.add(nsDCT+"title", english("Access through the Mosaic hub"))
	r.add(nsDCT+"description", english("Images and clinical data stay at the data holder's node; "+
		"access is requested through the hub and granted by a signed permit."))
	r.add(nsDCAT+"accessURL", iri(safeIRI(orDefault(d.LandingPage, datasetIRI))))
	r.add(nsDCATAP+"applicableLegislation", iri(ehdsRegulation))
	conds := d.AccessConditions
	if len(conds) == 0 {
		conds = []string{"REMOTE_PROCESSING"}
	}
	for _, a := range conds {
		a, _ := accessConditionIRI(a)
		r.add(nsDCT+"rights", iri(a))
	}
	if lic, _ := licenceIRI(d.Licence); lic != "" {
		r.add(nsDCT+"license", iri(lic))
	}
	r.add(nsDCAT+"mediaType", iri(mediaTypeDICOM))
	return id
}

// contact returns the dataset's contact point, the node when it has none.
func (b *builder) contact(d *Dataset, nodeTitle string) *resource {
	cp := &resource{}
	cp.types(nsVCARD + "Kind")
	cp.add(nsVCARD+"fn", plain(orDefault(strings.TrimSpace(d.ContactName), nodeTitle)))
	if d.ContactEmail != "" {
		cp.add(nsVCARD+"hasEmail", iri(mailto(d.ContactEmail)))
	}
	switch {
	case d.ContactURL != "":
		cp.add(nsVCARD+"hasURL", iri(safeIRI(d.ContactURL)))
	case d.ContactEmail == "":
		cp.add(nsVCARD+"hasURL", iri(safeIRI(orDefault(b.nodes[nodeOf(d)].url, b.nodeIRI(nodeOf(d))))))
	}
	return cp
}

// node describes a node's agent, once per document, and returns its IRI.
func (b *builder) node(node, title string) string {
	id := b.nodeIRI(node)
	r, fresh := b.doc.describe(id)
	if !fresh {
		return id
	}
	page := orDefault(b.nodes[node].url, id)
	r.types(nsFOAF+"Agent", nsFOAF+"Organization")
	r.add(nsFOAF+"name", plain(title))
	if u := b.nodes[node].url; u != "" {
		r.add(nsFOAF+"homepage", iri(safeIRI(u)))
	}
	cp := &resource{}
	cp.types(nsCV + "ContactPoint")
	cp.add(nsCV+"contactPage", iri(safeIRI(page)))
	r.add(nsCV+"contactPoint", blank(cp))
	return id
}

// mailto returns the mailto: IRI of an address, percent-encoding what an
// IRI may not carry.
func mailto(addr string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString("mailto:")
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			strings.IndexByte("-._~@+!$&'*,;=", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// version is the dataset's version, or its modification date as a
// calendar version, or 1.0.0.
func version(d *Dataset) string {
	if v := strings.TrimSpace(d.Version); v != "" {
		return v
	}
	if !d.Modified.IsZero() {
		return d.Modified.UTC().Format("2006.01.02")
	}
	return "1.0.0"
}

// summary is the generated description of a dataset that has none.
func summary(d *Dataset, nodeTitle string) string {
	s := fmt.Sprintf("Cancer imaging dataset held by %s: %d subjects, %d imaging studies", nodeTitle, d.Subjects, d.Studies)
	if len(d.Modalities) > 0 {
		s += "; modalities " + strings.Join(d.Modalities, ", ")
	}
	if len(d.BodyParts) > 0 {
		s += "; body parts " + strings.Join(d.BodyParts, ", ")
	}
	return s + "."
}

// provenance is the standard provenance statement.
func provenance(nodeTitle string) string {
	return "Described automatically by the Mosaic node of " + nodeTitle + " from its own index. " +
		"Images and clinical data were de-identified at the node's door (DICOM PS3.15 Basic " +
		"Application Level Confidentiality Profile, keyed pseudonyms) before being stored, " +
		"indexed or counted."
}

// keywords are the dataset's keywords, or ones derived from its content.
func keywords(d *Dataset) []string {
	var out []string
	for _, k := range d.Keywords {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, c := range d.Conditions {
		out = append(out, strings.TrimSpace(c.Label))
	}
	out = append(out, d.Modalities...)
	out = append(out, d.BodyParts...)
	out = slices.DeleteFunc(out, func(s string) bool { return strings.TrimSpace(s) == "" })
	if len(out) == 0 {
		out = []string{"cancer imaging"}
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

package dcat

import "strings"

// Namespaces of the vocabularies the export uses. Prefixes are those of the
// EUCAIM profile's examples, except healthdcatap, which takes the namespace
// of HealthDCAT-AP Release 7 itself: the EUCAIM profile marks the
// healthdcatap properties as inherited unchanged from that release (the
// profile's older example file used a w3id.org address instead).
const (
	nsCV     = "http://data.europa.eu/m8g/"
	nsDCAT   = "http://www.w3.org/ns/dcat#"
	nsDCATAP = "http://data.europa.eu/r5r/"
	nsDCT    = "http://purl.org/dc/terms/"
	nsDPV    = "https://w3id.org/dpv#"
	nsEUCAIM = "https://hyperontology.eucaim.cancerimage.eu/#"
	nsFDPO   = "https://w3id.org/fdp/fdp-o#"
	nsFOAF   = "http://xmlns.com/foaf/0.1/"
	nsHealth = "http://healthdataportal.eu/ns/health#"
	nsRDF    = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
	nsRDFS   = "http://www.w3.org/2000/01/rdf-schema#"
	nsSKOS   = "http://www.w3.org/2004/02/skos/core#"
	nsVCARD  = "http://www.w3.org/2006/vcard/ns#"
	nsXSD    = "http://www.w3.org/2001/XMLSchema#"
)

// prefixes are declared in both serialisations, in this order.
var prefixes = []struct{ prefix, ns string }{
	{"cv", nsCV},
	{"dcat", nsDCAT},
	{"dcatap", nsDCATAP},
	{"dct", nsDCT},
	{"dpv", nsDPV},
	{"eucaim", nsEUCAIM},
	{"fdp-o", nsFDPO},
	{"foaf", nsFOAF},
	{"healthdcatap", nsHealth},
	{"rdf", nsRDF},
	{"rdfs", nsRDFS},
	{"skos", nsSKOS},
	{"vcard", nsVCARD},
	{"xsd", nsXSD},
}

// Property is one RDF property of the profile.
type Property struct {
	// Name is the property's name in the profile.
	Name string
	// IRI is the predicate.
	IRI string
}

// MandatoryDatasetProperties are the properties that EUCAIM DCAT-AP v2.0
// marks Mandatory (occurrence 1..1 M or 1..n M) for a dcat:Dataset, read
// from EUCAIM/eucaim_dcat_ap releases/v2.0/Dataset.md (the version at
// commit 180b133bbabc2ea65a9316fde866689d02ec378f; sections
// Identification, Classification, Access and Rights, Publisher, Subjects
// and Population, Imaging Properties, and Keywords, Provenance, Standards
// and Coding). The export writes each of them for every dataset. The
// properties the profile makes mandatory inside the publisher and the
// contact point are checked by the tests too; healthdcatap:hdab is in
// TransitionalDatasetProperties.
var MandatoryDatasetProperties = []Property{
	{"Identifier", nsDCT + "identifier"},
	{"Title", nsDCT + "title"},
	{"Description", nsDCT + "description"},
	{"Version", nsDCAT + "version"},
	{"Interoperability Tier", nsEUCAIM + "interoperabilityLevel"},
	{"Dataset Distribution", nsDCAT + "distribution"},
	{"Dataset Contact Point", nsDCAT + "contactPoint"},
	{"Theme", nsDCAT + "theme"},
	{"Health Category", nsHealth + "healthCategory"},
	{"Type", nsDCT + "type"},
	{"Access Rights", nsDCT + "accessRights"},
	{"Applicable Legislation", nsDCATAP + "applicableLegislation"},
	{"Publisher", nsDCT + "publisher"},
	{"Structured Data", nsHealth + "hasStructuredData"},
	{"Number of Unique Individuals", nsHealth + "numberOfUniqueIndividuals"},
	{"Number of Imaging Studies", nsHealth + "numberOfRecords"},
	{"Birth Sex", nsEUCAIM + "hasBirthSex"},
	{"Cancer Condition", nsEUCAIM + "hasCondition"},
	{"Collection Method", nsEUCAIM + "collectionMethod"},
	{"Image Modality", nsEUCAIM + "hasImageModality"},
	{"Image Equipment Manufacturer", nsEUCAIM + "hasEquipmentManufacturer"},
	{"Image Body Part / Structure", nsEUCAIM + "hasImageBodyPart"},
	{"Keyword", nsDCAT + "keyword"},
	{"Provenance", nsDCT + "provenance"},
}

// TransitionalDatasetProperties are mandatory in the same file but may stay
// unpopulated during the EHDS transition: the Health Data Access Body
// ("A placeholder organisation MUST NOT be supplied"). The export writes it
// only when Dataset.HDAB is set.
var TransitionalDatasetProperties = []Property{
	{"Health Data Access Body", nsHealth + "hdab"},
}

// MandatoryCatalogueProperties are the Mandatory properties of a
// dcat:Catalog in EUCAIM/eucaim_dcat_ap releases/v2.0/Catalogue.md
// (inherited unchanged from HealthDCAT-AP Release 7).
var MandatoryCatalogueProperties = []Property{
	{"Title", nsDCT + "title"},
	{"Description", nsDCT + "description"},
	{"Applicable Legislation", nsDCATAP + "applicableLegislation"},
	{"Publisher", nsDCT + "publisher"},
}

// MandatoryDistributionProperties are the Mandatory properties of a
// dcat:Distribution in EUCAIM/eucaim_dcat_ap releases/v2.0/Distribution.md.
var MandatoryDistributionProperties = []Property{
	{"Access URL", nsDCAT + "accessURL"},
	{"Applicable Legislation", nsDCATAP + "applicableLegislation"},
	{"Rights / Access Conditions", nsDCT + "rights"},
}

// Fixed values and controlled vocabularies.
const (
	// ehdsRegulation is the ELI of Regulation (EU) 2025/327 (EHDS).
	ehdsRegulation = "http://data.europa.eu/eli/reg/2025/327/oj"
	// themeHealth is HEAL in the EU data theme authority table, and
	// dataThemes the table itself.
	themeHealth = "http://publications.europa.eu/resource/authority/data-theme/HEAL"
	dataThemes  = "http://publications.europa.eu/resource/authority/data-theme"
	// languageEnglish is ENG in the EU language authority table.
	languageEnglish = "http://publications.europa.eu/resource/authority/language/ENG"
	// accessRights is the EU access-right authority table.
	accessRights = "http://publications.europa.eu/resource/authority/access-right/"
	// healthCategoryEHR is EHRS in the HealthDCAT-AP health categories
	// (EHDS Article 51(1)(a)), at the address the EUCAIM profile cites.
	healthCategoryEHR = "https://hdeu-dcat.acceptance.data.health.europa.eu/resource/authority/healthcategories/EHRS"
	// healthThemeCancer is the health theme the EUCAIM profile recommends.
	healthThemeCancer = "https://hdeu-dcat.acceptance.data.health.europa.eu/resource/authority/health-theme/CANCER_DISEASE"
	// pseudonymisedData is the DPV data type of every Mosaic dataset.
	pseudonymisedData = nsDPV + "PseudonymisedData"
	// accessConditions is the EUCAIM access-condition vocabulary
	// (releases/controlled-vocabularies/access-conditions).
	accessConditions = "https://eucaim.github.io/eucaim_dcat_ap/releases/controlled-vocabularies/access-conditions/#"
	// mediaTypeDICOM is application/dicom in the IANA register.
	mediaTypeDICOM = "https://www.iana.org/assignments/media-types/application/dicom"
	// dicomCodes is the DICOM coding scheme DCM (PS3.16), whose codes
	// include the modality codes (CID 29).
	dicomCodes = "http://dicom.nema.org/resources/ontology/DCM/"
	// snomedCT is the namespace of SNOMED CT concepts.
	snomedCT = "http://snomed.info/id/"
	// spdxLicences is the SPDX licence list.
	spdxLicences = "http://spdx.org/licenses/"
	// defaultLicence is the licence of the metadata when none is given.
	defaultLicence = "CC0-1.0"
	// fdpSpec is the FAIR Data Point specification the root conforms to.
	fdpSpec = "https://specs.fairdatapoint.org/fdp-specs-v1.2.html"
)

// EUCAIM hyperontology classes whose subclasses the profile asks for.
const (
	classTier             = nsEUCAIM + "SPEC1000008"
	classCollectionMethod = nsEUCAIM + "SPEC1000002"
	classCondition        = nsEUCAIM + "CLIN1007977"
	classModality         = nsEUCAIM + "IMG1000009"
	classManufacturer     = nsEUCAIM + "IMG1000010"
	classBodyPart         = nsEUCAIM + "BP1000024"
)

// The EUCAIM hyperontology concept codes below are those EUCAIM's own
// search components map to: samply/focus src/eucaim_sql.rs (the EUCAIM
// criteria table, with its later correction of the modality codes) for
// sex, conditions, modalities, body parts and manufacturers. A value that
// is not listed is exported as described in the package documentation.

// birthSexes maps a sex to its EUCAIM concept.
var birthSexes = map[string]string{
	"female":  "COM1001370",
	"male":    "COM1001366",
	"other":   "COM1001288",
	"unknown": "COM1002760",
}

// birthSexIRI returns the EUCAIM concept of a sex given as female, male,
// other, unknown or DICOM's F, M, O.
func birthSexIRI(s string) (string, bool) {
	k := strings.ToLower(strings.TrimSpace(s))
	switch k {
	case "f":
		k = "female"
	case "m":
		k = "male"
	case "o":
		k = "other"
	case "u":
		k = "unknown"
	}
	code, ok := birthSexes[k]
	return nsEUCAIM + code, ok
}

// modalities maps DICOM modality codes to EUCAIM concepts. NM is left out
// on purpose: EUCAIM's concept is SPECT, and NM also covers planar
// scintigraphy.
var modalities = map[string]string{
	"CT": "IMG1000026",
	"MR": "IMG1000038",
	"PT": "IMG1004451",
}

// bodyParts maps DICOM Body Part Examined values to EUCAIM concepts.
var bodyParts = map[string]string{
	"BREAST":   "BP1000136",
	"COLON":    "BP1000257",
	"LUNG":     "BP1000113",
	"PELVIS":   "BP1000092",
	"PROSTATE": "BP1000021",
}

// manufacturers maps a lower-case word found in a DICOM Manufacturer value
// to a EUCAIM concept.
var manufacturers = []struct{ word, code string }{
	{"siemens", "IMG1000044"},
	{"philips", "IMG1000046"},
	{"toshiba", "IMG1000045"},
	{"general electric", "IMG1000047"},
	{"ge medical", "IMG1000047"},
	{"ge healthcare", "IMG1000047"},
}

// manufacturerIRI returns the EUCAIM concept of a manufacturer, if known.
func manufacturerIRI(s string) (string, bool) {
	k := strings.ToLower(strings.TrimSpace(s))
	if k == "ge" {
		return nsEUCAIM + "IMG1000047", true
	}
	for _, m := range manufacturers {
		if strings.Contains(k, m.word) {
			return nsEUCAIM + m.code, true
		}
	}
	return "", false
}

// cancerConditions maps the conditions Mosaic knows to EUCAIM concepts: by
// SNOMED CT concept, and by ICD-10 or ICD-O-3 topography category (the code
// before the dot).
var cancerConditions = []struct{ snomed, icd, code string }{
	{"363358000", "C34", "CLIN1000065"}, // lung
	{"254837009", "C50", "CLIN1000060"}, // breast
	{"363406005", "C18", "CLIN1000057"}, // colon
	{"399068003", "C61", "CLIN1000075"}, // prostate
	{"363484005", "", "CLIN1000087"},    // pelvis
}

// codingSystem normalises a coding system's name: "ICD-10", "icd10" and
// "ICD 10" give "ICD10"; "SNOMED CT" and "SNOMED-CT" give "SNOMEDCT".
func codingSystem(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r != ' ' && r != '-' && r != '_' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// conditionIRI returns the EUCAIM concept of a condition, if known.
func conditionIRI(c Condition) (string, bool) {
	code := strings.ToUpper(strings.TrimSpace(c.Code))
	sys := codingSystem(c.System)
	category, _, _ := strings.Cut(code, ".")
	for _, k := range cancerConditions {
		switch {
		case sys == "SNOMEDCT" || sys == "SCT":
			if code == k.snomed {
				return nsEUCAIM + k.code, true
			}
		case sys == "ICD10" || sys == "ICDO3":
			if k.icd != "" && category == k.icd {
				return nsEUCAIM + k.code, true
			}
		}
	}
	return "", false
}

// accessRightIRI returns the EU access-right IRI; "" means NON_PUBLIC.
func accessRightIRI(s string) (string, bool) {
	k := strings.ToUpper(strings.TrimSpace(s))
	k = strings.ReplaceAll(k, "-", "_")
	switch k {
	case "":
		return accessRights + "NON_PUBLIC", true
	case "PUBLIC", "RESTRICTED", "NON_PUBLIC":
		return accessRights + k, true
	}
	return "", false
}

// accessConditionIRI returns the EUCAIM access-condition IRI.
func accessConditionIRI(s string) (string, bool) {
	k := strings.ToUpper(strings.TrimSpace(s))
	k = strings.ReplaceAll(strings.ReplaceAll(k, "-", "_"), " ", "_")
	switch k {
	case "DOWNLOAD", "IN_SITU_PROCESSING", "REMOTE_PROCESSING":
		return accessConditions + k, true
	}
	return "", false
}

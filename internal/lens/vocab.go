package lens

import (
	"regexp"
	"strconv"
	"strings"
)

// keys maps catalogue keys (upper-cased) to attributes.
var keys = map[string]Attr{}

func init() {
	for a := Gender; a <= Manufacturer; a++ {
		keys[strings.ToUpper(a.Key())] = a
	}
}

// Types of condition as Lens names them.
const (
	tEquals      = "EQUALS"
	tNotEquals   = "NOT_EQUALS"
	tIn          = "IN"
	tBetween     = "BETWEEN"
	tLowerThan   = "LOWER_THAN"
	tGreaterThan = "GREATER_THAN"
	tContains    = "CONTAINS"
)

var knownTypes = map[string]bool{tEquals: true, tNotEquals: true, tIn: true, tBetween: true, tLowerThan: true, tGreaterThan: true, tContains: true}

// allowed lists the condition types each attribute takes.
func allowed(a Attr, t string) bool {
	switch {
	case a.Numeric():
		return t == tEquals || t == tNotEquals || t == tBetween || t == tLowerThan || t == tGreaterThan
	case a == Manufacturer:
		return t == tEquals || t == tNotEquals || t == tIn || t == tContains
	default:
		return t == tEquals || t == tNotEquals || t == tIn
	}
}

// snomed returns the concept id of a SNOMED CT code written as
// "SNOMEDCT123", "SCT:123" or "123".
func snomed(v string) (string, bool) {
	u := strings.ToUpper(v)
	for _, p := range []string{"SNOMEDCT", "SNOMED CT:", "SNOMED:", "SCT:", "SCT"} {
		if strings.HasPrefix(u, p) {
			u = strings.TrimSpace(u[len(p):])
			break
		}
	}
	if u == "" || len(u) > 18 {
		return "", false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < '0' || u[i] > '9' {
			return "", false
		}
	}
	return u, true
}

// looksCoded reports whether a value has the shape of a code of one of the
// catalogue's terminologies (so an unknown one is an error rather than
// free text).
var looksCoded = regexp.MustCompile(`^(?i)(snomed ?ct:?|sct:?|snomed:)?[0-9]+$|^(?i)rid[0-9]+$|^(?i)birnlex_[0-9]+$|^(?i)C[0-9]{4,}$`)

// genders maps gender values to the node's words.
var genders = map[string]string{
	"248153007": "male", "248152002": "female", "74964007": "other", "261665006": "unknown",
	"MALE": "male", "FEMALE": "female", "OTHER": "other", "UNKNOWN": "unknown",
	"M": "male", "F": "female", "O": "other",
}

func gender(v string) (Match, string, bool) {
	k := strings.ToUpper(v)
	if id, ok := snomed(v); ok {
		k = id
	}
	g, ok := genders[k]
	if !ok {
		return Match{}, "", false
	}
	return Match{Exact, g}, g, true
}

// diagnosisTerm is what a diagnosis value stands for.
type diagnosisTerm struct {
	label    string
	prefixes []string // ICD-10, without dots
	types    []string // the node's cancer types, for conditions without an ICD-10 code
}

func icdRange(letter byte, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, string(letter)+twoDigits(i))
	}
	return out
}

func twoDigits(i int) string {
	if i < 10 {
		return "0" + strconv.Itoa(i)
	}
	return strconv.Itoa(i)
}

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var (
	colon    = diagnosisTerm{"colon cancer", []string{"C18", "C19", "C20"}, []string{"colorectal"}}
	breast   = diagnosisTerm{"breast cancer", []string{"C50"}, []string{"breast"}}
	lung     = diagnosisTerm{"lung cancer", []string{"C34"}, []string{"lung"}}
	pelvis   = diagnosisTerm{"pelvis cancer", join(icdRange('C', 19, 21), icdRange('C', 51, 58), []string{"C61", "C67", "C68"}), []string{"prostate", "bladder", "cervix", "ovary"}}
	prostate = diagnosisTerm{"prostate cancer", []string{"C61"}, []string{"prostate"}}
	liver    = diagnosisTerm{"liver cancer", []string{"C22"}, []string{"liver"}}
	pancreas = diagnosisTerm{"pancreas cancer", []string{"C25"}, []string{"pancreas"}}
)

// diagnoses maps SNOMED CT concept ids and the node's cancer type words
// (upper-cased) to terms.
var diagnoses = map[string]diagnosisTerm{
	"363406005": colon, "254837009": breast, "363358000": lung, "363484005": pelvis,
	"399068003": prostate, "93870000": liver, "363418001": pancreas,

	"COLORECTAL": colon, "BREAST": breast, "LUNG": lung, "PROSTATE": prostate, "LIVER": liver, "PANCREAS": pancreas,
	"KIDNEY":        {"kidney cancer", []string{"C64"}, []string{"kidney"}},
	"BLADDER":       {"bladder cancer", []string{"C67"}, []string{"bladder"}},
	"BRAIN":         {"brain cancer", []string{"C71"}, []string{"brain"}},
	"CERVIX":        {"cervix cancer", []string{"C53"}, []string{"cervix"}},
	"OVARY":         {"ovary cancer", []string{"C56"}, []string{"ovary"}},
	"STOMACH":       {"stomach cancer", []string{"C16"}, []string{"stomach"}},
	"OESOPHAGUS":    {"oesophagus cancer", []string{"C15"}, []string{"oesophagus"}},
	"MELANOMA":      {"melanoma", []string{"C43"}, []string{"melanoma"}},
	"LYMPHOMA":      {"lymphoma", join(icdRange('C', 81, 86), []string{"C88"}), []string{"lymphoma"}},
	"HEAD-AND-NECK": {"head and neck cancer", join(icdRange('C', 0, 14), icdRange('C', 30, 32)), []string{"head-and-neck"}},
	"THYROID":       {"thyroid cancer", []string{"C73"}, []string{"thyroid"}},
}

// icd10 is the shape of an ICD-10 code: a letter, two digits (the
// category), then optionally a subdivision after a dot, or up to two
// characters without one (so NCIt codes like C25392 are not taken for one).
var icd10 = regexp.MustCompile(`^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4}|[0-9A-Z]{1,2})?$`)

// icdSystem reports whether a condition's system names ICD-10.
func icdSystem(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "icd-10") || strings.Contains(s, "icd10") || strings.Contains(s, "icd_10")
}

func diagnosis(v, system string) ([]Match, string, bool) {
	u := strings.ToUpper(v)
	if !icdSystem(system) {
		k := u
		if id, ok := snomed(v); ok {
			k = id
		}
		if t, ok := diagnoses[k]; ok {
			var ms []Match
			for _, p := range t.prefixes {
				ms = append(ms, Match{Prefix, p})
			}
			for _, c := range t.types {
				ms = append(ms, Match{CancerType, c})
			}
			return ms, t.label, true
		}
	}
	if !icd10.MatchString(u) {
		return nil, "", false
	}
	code := strings.ReplaceAll(u, ".", "")
	label := code
	if len(code) > 3 {
		label = code[:3] + "." + code[3:]
	}
	return []Match{{Prefix, code}}, label, true
}

// radlexModalities maps the catalogue's RadLex codes to DICOM modalities.
var radlexModalities = map[string]string{"RID10312": "MR", "RID10337": "PT", "RID10334": "NM", "RID10321": "CT"}

// dicomModalities are the defined terms of Modality (0008,0060), PS3.3
// C.7.3.1.1.1, current and retired.
var dicomModalities = map[string]bool{}

func init() {
	for _, m := range strings.Fields(`AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DG DOC DX ECG EEG EMG EOG EPS ES FID GM HC HD IO IOL
		IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA PLAN POS PR PT PX REG RESP RF RG
		RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA
		XAPROTOCOL XC AS CD CF CP CS DF DM DS EC FA FS LP MA MS OPR ST VF`) {
		dicomModalities[m] = true
	}
}

func modality(v string) (Match, string, bool) {
	u := strings.ToUpper(v)
	if m, ok := radlexModalities[u]; ok {
		return Match{Exact, m}, m, true
	}
	if dicomModalities[u] {
		return Match{Exact, u}, u, true
	}
	return Match{}, "", false
}

type bodyPartTerm struct {
	label string
	dicom []string
}

var chestParts = []string{"CHEST", "LUNG", "THORAX"}

// bodyParts maps SNOMED CT concept ids to Body Part Examined values.
var bodyParts = map[string]bodyPartTerm{
	"76752008":  {"breast", []string{"BREAST"}},
	"71854001":  {"colon", []string{"COLON"}},
	"39607008":  {"lung", chestParts},
	"12921003":  {"pelvis", []string{"PELVIS"}},
	"41216001":  {"prostate", []string{"PROSTATE"}},
	"51185008":  {"chest", chestParts},
	"818981001": {"abdomen", []string{"ABDOMEN"}},
	"113345001": {"abdomen", []string{"ABDOMEN"}},
	"38266002":  {"whole body", []string{"WHOLEBODY"}},
}

// dicomBodyPart is the shape of a Body Part Examined value (CS).
var dicomBodyPart = regexp.MustCompile(`^[A-Z0-9_ ]{1,16}$`)

func bodyPart(v string) ([]Match, string, bool) {
	if id, ok := snomed(v); ok {
		t, ok := bodyParts[id]
		if !ok {
			return nil, "", false
		}
		var ms []Match
		for _, d := range t.dicom {
			ms = append(ms, Match{Exact, d})
		}
		return ms, t.label, true
	}
	u := strings.ToUpper(v)
	if looksCoded.MatchString(v) || !dicomBodyPart.MatchString(u) {
		return nil, "", false
	}
	return []Match{{Exact, u}}, u, true
}

type vendor struct {
	label string
	words []string
}

var (
	siemens = vendor{"Siemens", []string{"SIEMENS"}}
	ge      = vendor{"GE", []string{"GE", "GEMS", "GENERAL ELECTRIC"}}
	philips = vendor{"Philips", []string{"PHILIPS"}}
	toshiba = vendor{"Toshiba/Canon", []string{"TOSHIBA", "CANON"}}
)

// vendorCodes maps the catalogue's manufacturer codes (upper-cased).
var vendorCodes = map[string]vendor{"C200140": siemens, "BIRNLEX_3066": siemens, "BIRNLEX_12833": ge, "BIRNLEX_3065": philips, "BIRNLEX_3067": toshiba}

// vendorNames maps vendor names typed as free text, as ManufacturerWords
// normalises them.
var vendorNames = map[string]vendor{
	"SIEMENS": siemens, "SIEMENS HEALTHINEERS": siemens, "SIEMENS MEDICAL SOLUTIONS": siemens, "SIEMENS HEALTHCARE": siemens,
	"GE": ge, "GEMS": ge, "GE MEDICAL SYSTEMS": ge, "GE HEALTHCARE": ge, "GENERAL ELECTRIC": ge, "GENERAL ELECTRIC MEDICAL SYSTEMS": ge,
	"PHILIPS": philips, "PHILIPS MEDICAL SYSTEMS": philips, "PHILIPS HEALTHCARE": philips,
	"TOSHIBA": toshiba, "TOSHIBA MEDICAL SOLUTIONS": toshiba, "TOSHIBA MEDICAL SYSTEMS": toshiba, "TOSHIBA MEC": toshiba,
	"CANON": toshiba, "CANON MEDICAL SYSTEMS": toshiba, "CANON MEC": toshiba,
}

// ManufacturerWords normalises a manufacturer for Word matching: ASCII
// letters upper-cased, "_", "-", ".", "," and "/" read as spaces, runs of
// spaces collapsed, trimmed. The node's SQL does the same (without
// collapsing runs), then pads both sides with a space.
func ManufacturerWords(s string) string {
	s = upperASCII(s)
	s = strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ',', '/', '\t':
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// upperASCII upper-cases ASCII letters only, as both SQL engines' UPPER
// do in the node's collation.
func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func manufacturer(v string, contains bool) ([]Match, string, bool) {
	if contains {
		return []Match{{Substring, upperASCII(v)}}, v, true
	}
	if t, ok := vendorCodes[strings.ToUpper(v)]; ok {
		return vendorMatches(t), t.label, true
	}
	if t, ok := vendorNames[ManufacturerWords(v)]; ok {
		return vendorMatches(t), t.label, true
	}
	if looksCoded.MatchString(v) {
		return nil, "", false
	}
	return []Match{{Exact, upperASCII(v)}}, strconv.Quote(v), true
}

func vendorMatches(t vendor) []Match {
	var ms []Match
	for _, w := range t.words {
		ms = append(ms, Match{Word, w})
	}
	return ms
}

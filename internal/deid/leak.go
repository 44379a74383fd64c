package deid

import (
	"strings"
	"unicode/utf8"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// identifyingTags are attributes whose values identify a person or place
// and are looked for in the output by the leak check (person names, VR PN,
// are always collected).
var identifyingTags = map[dicom.Tag]string{
	0x00100020: "PatientID",
	0x00101000: "OtherPatientIDs",
	0x00100030: "PatientBirthDate",
	0x00080050: "AccessionNumber",
	0x00101040: "PatientAddress",
	0x00102154: "PatientTelephoneNumbers",
	0x00080080: "InstitutionName",
	0x00080081: "InstitutionAddress",
	0x00080092: "ReferringPhysicianAddress",
	0x00080094: "ReferringPhysicianTelephoneNumbers",
	0x00401102: "PersonAddress",
	0x00401103: "PersonTelephoneNumbers",
	0x00200010: "StudyID",
	0x00401001: "RequestedProcedureID",
	0x00400009: "ScheduledProcedureStepID",
	0x00101090: "MedicalRecordLocator",
	0x00102150: "CountryOfResidence",
	0x00102152: "RegionOfResidence",
	0x00100050: "PatientInsurancePlanCodeSequence",
	0x00081040: "InstitutionalDepartmentName",
	0x00081010: "StationName",
	0x00181000: "DeviceSerialNumber",
}

// generatedText holds, lower-cased, the text the engine itself writes:
// dummies and the conformance attributes.
var generatedText = strings.ToLower(strings.Join([]string{
	"ANONYMIZED", "19000101000000", "000000", "000Y", "urn:anonymized", "MOSAIC DEID", "YES", "REMOVED",
	"MODIFIED", "UNMODIFIED", "DCM", "Basic Application Confidentiality Profile",
	optionCodes[0].meaning, optionCodes[1].meaning, optionCodes[2].meaning, optionCodes[3].meaning,
	optionCodes[4].meaning, optionCodes[5].meaning, optionCodes[6].meaning, optionCodes[7].meaning,
	optionCodes[8].meaning, optionCodes[9].meaning,
}, "\x00"))

// needle is one identifying value to look for, lower-cased.
type needle struct {
	text string
	what string
}

// minNeedle is the shortest value looked for: shorter ones (a sex, a
// one-digit ID) would match by chance everywhere.
const minNeedle = 4

// collect gathers the identifying values of the input, except those of
// attributes the policy keeps on purpose.
//
// For input already de-identified with this key (own), the patient's ID
// and name at the top level are this site's pseudonyms, kept on purpose:
// not collected.
//
// With a scrubber (Clean Descriptors), the same walk gives it the names
// and identifying values collected here, and every date and time.
func (e *Engine) collect(ds *dicom.Dataset, own bool, sc *scrubber) []needle {
	seen := map[string]bool{}
	var out []needle
	add := func(s, what string) {
		s = strings.ToLower(strings.TrimSpace(s))
		if strings.Contains(generatedText, s) {
			// A placeholder such as "ANON" also occurs in the values the
			// engine writes itself; finding it proves nothing.
			return
		}
		if len(s) < minNeedle && !(utf8.RuneCountInString(s) >= 2 && len(s) >= minNeedle-1 && !isASCII(s)) {
			return
		}
		if seen[s] {
			return
		}
		seen[s] = true
		out = append(out, needle{text: s, what: what})
	}
	var dates []string // distinct date and time values given to sc
	ds.Walk(func(_ []dicom.Tag, d *dicom.Dataset, el *dicom.Element) bool {
		if el.Items != nil {
			return true
		}
		if sc != nil {
			switch el.VR {
			case dicom.DA, dicom.DT, dicom.TM:
				dates = sc.addDates(el.VR, el.Value, dates)
			}
		}
		what, listed := identifyingTags[el.Tag]
		if el.VR != dicom.PN && !listed {
			return true
		}
		if own && d.Parent() == nil && (el.Tag == tagPatientID || el.Tag == tagPatientName) {
			// Only the top level is sealed (see mark.go); nested IDs and
			// names are searched for as in any input.
			return true
		}
		if a, _, row := e.p.action(el.Tag); row != nil || a != 0 {
			if a == Keep {
				return true
			}
		}
		if el.VR == dicom.PN {
			what = "a person name"
			if e, ok := dicom.Lookup(el.Tag); ok {
				what = e.Keyword
			}
			for _, v := range d.Strings(el) {
				for _, s := range nameVariants(v) {
					add(s, what)
				}
				if sc != nil {
					sc.addName(v)
				}
			}
			return true
		}
		for _, v := range d.Strings(el) {
			add(v, what)
			if sc != nil {
				sc.addID(v)
			}
		}
		return true
	})
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// nameVariants lists the forms a person name may take elsewhere: the
// components in either order, with carets, spaces or a comma, and the
// family name alone.
func nameVariants(v string) []string {
	pn := dicom.ParsePN(v)
	var out []string
	for _, g := range []dicom.NameComponents{pn.Alphabetic, pn.Ideographic, pn.Phonetic} {
		f, giv := g.Family, g.Given
		switch {
		case f != "" && giv != "":
			out = append(out, f+"^"+giv, giv+"^"+f, giv+" "+f, f+" "+giv, f+", "+giv, f+","+giv)
			out = append(out, f)
		case f != "":
			out = append(out, f)
		case giv != "":
			out = append(out, giv)
		}
		if s := g.String(); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// leakCheck looks for every identifying value of the input in the output
// dataset: in the raw bytes of each value and in its decoded text. UIDs
// (replaced by keyed hashes of decimal digits) and pixel data (copied
// unchanged, and checked by the burned-in rules) are not searched.
//
// Values of attributes the profile table does not list and that hold no
// free text (a manufacturer, a coding scheme, an image type) are kept
// because the standard deems them safe; short identifying values match
// them by chance ("TOSHIBA" as both institution and manufacturer, a
// patient called "Test" and the coding scheme TEST). There a hit counts
// only when a whole value equals an identifying value of 8 characters or
// more. Everywhere else any occurrence counts.
func (j *job) leakCheck(ds *dicom.Dataset) error {
	if len(j.ids) == 0 {
		return nil
	}
	var hay strings.Builder
	var whole map[string]bool
	ds.Walk(func(_ []dicom.Tag, d *dicom.Dataset, el *dicom.Element) bool {
		if el.Items != nil || el.Stream || el.Fragments != nil || el.VR == dicom.UI || el.Tag == dicom.TagPixelData {
			return true
		}
		if len(el.Value) == 0 {
			return true
		}
		if el.Tag == tagDeidentificationMethod && d.Parent() == nil {
			return true // written by the engine: the policy's name and the marks
		}
		if safeAttribute(el) {
			if whole == nil {
				whole = map[string]bool{}
			}
			for _, v := range d.Strings(el) {
				whole[strings.ToLower(v)] = true
			}
			return true
		}
		for _, c := range el.Value {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			hay.WriteByte(c)
		}
		hay.WriteByte(0)
		if el.VR.UsesCharset() {
			hay.WriteString(strings.ToLower(d.Text(el)))
			hay.WriteByte(0)
		}
		return true
	})
	s := hay.String()
	for _, n := range j.ids {
		if strings.Contains(s, n.text) || (len(n.text) >= 8 && whole[n.text]) {
			return reject("leak", "a value of %s from the input is still in the output", n.what)
		}
	}
	return nil
}

// safeAttribute reports whether el is a public attribute outside the
// profile table holding no free text or names.
func safeAttribute(el *dicom.Element) bool {
	if el.Tag.Group()&1 == 1 || !el.VR.IsText() {
		return false
	}
	switch el.VR {
	case dicom.PN, dicom.ST, dicom.LT, dicom.UT, dicom.UC:
		return false
	}
	_, listed := lookupRow(el.Tag)
	return !listed
}

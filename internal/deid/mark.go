package deid

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// This file recognises input that Mosaic already de-identified. Running
// `mosaic deid` on a folder and then ingesting its output at the node must
// not pseudonymise twice: the clinical table, pseudonymised once with the
// same key, would join nothing, and every patient would be counted twice.
//
// Every output records, besides Patient Identity Removed (YES) and the
// De-identification Method Code Sequence (113100 and the options), a
// De-identification Method text of the form
//
//	MOSAIC DEID <POLICY> D:<dates> K:<key fingerprint> S:<seal>
//
// D: names the date treatment the output had (see dateMark): S and the
// greatest shift in days for a shift, M for the first of the month, R for
// removed, K for kept. The key fingerprint is 8 characters of a keyed hash
// of a fixed label: it names the site key without revealing anything of
// it. The seal is 16 characters of a keyed hash of the date treatment and
// of the object's patient ID, patient name and study, series and instance
// UIDs as written: only the holder of the key can make it, so raw data
// cannot pass as already de-identified by copying the method text of an
// output, and the date treatment cannot be changed in the text.
//
// Input with these marks, this key's fingerprint and a valid seal keeps
// its pseudonyms and UIDs; the rest of the policy and the leak check
// apply as to any input. Its dates are left as they are only when the
// mark says they were shifted exactly as this policy shifts them (same
// key, same greatest shift, hence the same shift); otherwise this
// policy's date treatment is applied to the dates as they are. Every
// treatment only takes information away (a shift of an already shifted
// or truncated date, a truncation of a shifted one), so combining them is
// safe; what it costs is that such dates no longer line up with a
// clinical table treated once. Marks written before D: existed are
// accepted with the seal of that time, and their date treatment is taken
// as unknown: this policy's treatment is applied.
//
// Input marked by Mosaic with another key, or with no fingerprint, or
// whose seal does not match, is refused: de-identifying it again would
// silently give its patients a second set of pseudonyms. Input
// de-identified by other tools is treated as original data and
// de-identified again (docs/node.md says why).

// fingerprintLen and sealLen are the lengths of the two marks.
const (
	fingerprintLen = 8
	sealLen        = 16
	methodPrefix   = "MOSAIC DEID "
)

// methodText returns the De-identification Method value for the
// de-identified dataset ds: the policy name, cut so that the marks fit in
// the 64 characters of an LO value.
func (e *Engine) methodText(ds *dicom.Dataset) string {
	dates := e.dateMark()
	marks := " D:" + dates + " K:" + e.fp + " S:" + e.seal(ds, dates)
	name := []rune(strings.ToUpper(e.p.Name))
	if max := 64 - len(methodPrefix) - len(marks); len(string(name)) > max {
		for len(string(name)) > max && len(name) > 0 {
			name = name[:len(name)-1]
		}
	}
	return methodPrefix + string(name) + marks
}

// dateMark names the policy's date treatment in the marks: S and the
// greatest shift in days, M, R or K. Two outputs of one site key with the
// same S mark had every patient's dates shifted by the same days.
func (e *Engine) dateMark() string {
	switch e.p.Dates {
	case DatesShift:
		return "S" + strconv.Itoa(e.p.MaxShiftDays)
	case DatesMonth:
		return "M"
	case DatesKeep:
		return "K"
	}
	return "R"
}

// seal is the keyed hash of what an output's identity is made of, and of
// its date treatment. An empty dates gives the seal of the marks written
// before the date treatment was recorded.
func (e *Engine) seal(ds *dicom.Dataset, dates string) string {
	pid, _ := ds.String(tagPatientID)
	name, _ := ds.String(tagPatientName)
	parts := []string{strings.TrimSpace(pid), strings.TrimSpace(name),
		ds.UID(tagStudyInstanceUID), ds.UID(tagSeriesInstanceUID), ds.UID(dicom.TagSOPInstanceUID)}
	if dates == "" {
		return e.h.pseudonym("", "deid-seal", parts...)
	}
	return e.h.pseudonym("", "deid-seal-dates", append(parts, dates)...)
}

// checkMark reports whether ds is an output of Mosaic made with this
// site key, and with which date treatment (its D: mark; empty for marks
// that predate it), and refuses Mosaic outputs it cannot take as they are.
func (e *Engine) checkMark(ds *dicom.Dataset) (own bool, dates string, err error) {
	removed, _ := ds.String(tagPatientIdentityRemoved)
	method, _ := ds.String(tagDeidentificationMethod)
	if !strings.EqualFold(removed, "YES") || !strings.HasPrefix(method, methodPrefix) ||
		!hasMethodCode(ds, "113100") {
		return false, "", nil // original data, or de-identified by another tool
	}
	var fp, seal string
	for _, f := range strings.Fields(method) {
		switch {
		case strings.HasPrefix(f, "K:"):
			fp = f[2:]
		case strings.HasPrefix(f, "S:"):
			seal = f[2:]
		case strings.HasPrefix(f, "D:"):
			dates = f[2:]
		}
	}
	switch {
	case fp == "" || seal == "":
		return false, "", reject("unbound-deid", "already de-identified by a Mosaic version that did not record its site key: "+
			"de-identifying it again would give its patients second pseudonyms; de-identify the original files instead")
	case fp != e.fp:
		return false, "", reject("other-site-key", "already de-identified by Mosaic with another site key: "+
			"de-identifying it again would give its patients second pseudonyms that join nothing; "+
			"use the site key that de-identified it, or the original files")
	case seal != e.seal(ds, dates):
		return false, "", reject("altered-deid", "marked as de-identified by Mosaic with this site key, but its patient ID, "+
			"name, UIDs or date treatment were changed since (the seal does not match); use the original files")
	}
	if pid, _ := ds.String(tagPatientID); len(pid) < sealLen {
		return false, "", reject("altered-deid", "marked as de-identified by Mosaic with this site key, but it has no patient pseudonym")
	}
	return true, dates, nil
}

// hasMethodCode reports whether the De-identification Method Code
// Sequence of ds holds the DICOM code value.
func hasMethodCode(ds *dicom.Dataset, value string) bool {
	el := ds.Get(tagDeidentificationMethodCodeSequence)
	if el == nil {
		return false
	}
	for _, it := range el.Items {
		v, _ := it.Dataset.String(tagCodeValue)
		s, _ := it.Dataset.String(tagCodingSchemeDesignator)
		if v == value && s == "DCM" {
			return true
		}
	}
	return false
}

// reprefix gives a pseudonym of this site (any prefix followed by the 16
// characters of the keyed hash) the policy's prefix, which is what
// de-identifying the original under this policy would give.
func (e *Engine) reprefix(v string) string {
	if len(v) < 16 {
		return v
	}
	return e.p.PatientIDPrefix + v[len(v)-16:]
}

// knownPrefixes start the pseudonyms of the presets.
var knownPrefixes = []string{"MOS-", "EUCAIM-"}

// isPseudonym reports whether id has the form of a patient pseudonym of
// this engine's policy or of a preset: the prefix and 16 characters of
// the pseudonym alphabet. The form alone proves nothing: it keeps a
// nested ID of sealed own output, and it makes a clinical row without a
// valid seal count as unsealed (rowmark.go); it never keeps a row's ID.
func (e *Engine) isPseudonym(id string) bool {
	if len(id) < 17 {
		return false
	}
	prefix, hash := id[:len(id)-16], id[len(id)-16:]
	if prefix != e.p.PatientIDPrefix && !slices.Contains(knownPrefixes, prefix) {
		return false
	}
	if prefix == "" {
		return false
	}
	for i := 0; i < len(hash); i++ {
		if !strings.ContainsRune(pseudonymAlphabet, rune(hash[i])) {
			return false
		}
	}
	return true
}

package deid

import (
	"fmt"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// PatientPseudonym returns the pseudonym the engine gives a patient with
// this ID and issuer in DICOM objects, so clinical rows join the images.
// An empty ID has no pseudonym: the result is empty. The ID is taken as
// an original ID, whatever it looks like: a row of a table 'mosaic deid
// clinical' wrote is recognised by its seal (CheckRow), not by its ID.
func (e *Engine) PatientPseudonym(id, issuer string) string {
	id = strings.TrimSpace(id)
	if id == "" {
		return ""
	}
	var ds dicom.Dataset
	return e.h.pseudonym(e.p.PatientIDPrefix, "patient-id", patientKey(&ds, id, issuer))
}

// ChangeDate applies the policy's date treatment to a date of the patient
// with this ID and issuer, as it is applied to that patient's DICOM dates:
// the same shift, or the first of the month. The date is YYYYMMDD or
// YYYY-MM-DD and is returned in the same form; with the remove policy the
// result is empty, with keep it is unchanged. Like PatientPseudonym it
// takes the ID as an original ID; a sealed row's dates go through
// Row.ChangeDate.
func (e *Engine) ChangeDate(id, issuer, date string) (string, error) {
	date = strings.TrimSpace(date)
	if date == "" {
		return "", nil
	}
	switch e.p.Dates {
	case DatesRemove:
		return "", nil
	case DatesKeep:
		return date, nil
	}
	dashed := len(date) == 10 && date[4] == '-' && date[7] == '-'
	compact := date
	if dashed {
		compact = date[:4] + date[5:7] + date[8:]
	}
	shift := 0
	if e.p.Dates == DatesShift {
		var ds dicom.Dataset
		shift = e.h.shiftDays(patientKey(&ds, id, issuer), e.p.MaxShiftDays)
	}
	out, ok := changeDate(compact, dicom.DA, e.p.Dates, shift)
	if !ok || len(compact) != 8 {
		return "", fmt.Errorf("deid: not a date (want YYYYMMDD or YYYY-MM-DD)")
	}
	if dashed {
		out = out[:4] + "-" + out[4:6] + "-" + out[6:]
	}
	return out, nil
}

// StudyUID returns the Study Instance UID the engine gives a study whose
// original UID is uid, so that a study named before de-identification
// (in a STOW-RS URL, say) can be found after it.
func (e *Engine) StudyUID(uid string) string {
	if a, _, _ := e.p.action(tagStudyInstanceUID); a == UID {
		return e.h.uid(uid)
	}
	return uid
}

// NoiseKey is a secret derived from the site key for seeding the noise
// of federated search answers: it changes with the site key but reveals
// nothing of it.
func (e *Engine) NoiseKey() []byte {
	return e.h.sum(nil, "search-noise")
}

// SnapshotKey is a secret derived from the site key for the published
// digests of cohort snapshots: only the node can recompute them, so a
// digest cannot be used to test whether a known patient is in a cohort.
// It is independent of NoiseKey.
func (e *Engine) SnapshotKey() []byte {
	return e.h.sum(nil, "snapshot-digest")
}

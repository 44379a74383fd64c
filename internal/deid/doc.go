// Package deid de-identifies DICOM objects at a node's door, following the
// Basic Application Level Confidentiality Profile of DICOM PS3.15 Annex E
// with every option selectable.
//
// The rules of Table E.1-1 are generated from the standard's data and
// applied at every nesting level. UIDs become 2.25 UIDs derived from a
// keyed hash (HMAC-SHA-256 with the site key) of the original, so the same
// UID maps the same way in every file, run and process with no mapping
// table; patient IDs and names become a prefix plus a keyed hash; dates are
// removed, shifted by a per-patient keyed offset, or moved to the first of
// the month. Pixel data is copied unchanged, so objects that may show
// identity in their pixels are rejected rather than passed. After each
// object is de-identified, a leak check looks for every identifying value
// of the input in the output and rejects the object on any hit.
package deid

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
// of the input in the output and rejects the object on any hit. With the
// Clean Descriptors option, descriptions the policy keeps are first
// scrubbed of the object's own names, IDs, dates and times and of generic
// dates and long numbers.
//
// Every output carries a fingerprint of the site key and a keyed seal of
// its identity in its De-identification Method, so that output of this
// engine given back to it (de-identified first, ingested later) keeps its
// pseudonyms and UIDs instead of being pseudonymised twice; output made
// with another key is refused.
package deid

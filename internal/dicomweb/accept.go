package dicomweb

import (
	"strconv"
	"strings"
)

// mediaRange is one element of an Accept header.
type mediaRange struct {
	typ, sub string
	params   map[string]string // without q
	q        float64
}

// parseAccept returns the media ranges of an Accept header value (several
// Accept header fields are joined with commas first). Elements that do not
// parse, or whose q value is not a valid qvalue, are left out, as if the
// client had not sent them.
func parseAccept(accept string) []mediaRange {
	var out []mediaRange
	for _, e := range splitList(accept) {
		mt, params, ok := parseMediaType(e)
		if !ok {
			continue
		}
		typ, sub, _ := strings.Cut(mt, "/")
		if typ == "*" && sub != "*" {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, ok = parseQ(v); !ok {
				continue
			}
			delete(params, "q")
		}
		out = append(out, mediaRange{typ: typ, sub: sub, params: params, q: q})
	}
	return out
}

// parseQ parses a qvalue (RFC 9110 section 12.4.2): 0 to 1 with at most
// three decimals.
func parseQ(s string) (float64, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	if len(s) > 1 && (s[1] != '.' || len(s) == 2) {
		return 0, false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	q, err := strconv.ParseFloat(s, 64)
	if err != nil || q > 1 {
		return 0, false
	}
	return q, true
}

// negotiate applies RFC 9110 section 12.5.1 to one representation: of the
// ranges that match it (match returns a specificity above zero, higher
// for more specific ranges), the most specific ones decide, and among
// them the one with the highest q. It returns that range and whether the
// representation is acceptable (q above zero).
func negotiate(ranges []mediaRange, match func(mediaRange) int) (mediaRange, bool) {
	best, bestSpec := mediaRange{}, 0
	for _, r := range ranges {
		s := match(r)
		if s == 0 {
			continue
		}
		if s > bestSpec || (s == bestSpec && r.q > best.q) {
			best, bestSpec = r, s
		}
	}
	return best, bestSpec > 0 && best.q > 0
}

// AcceptsMultipartDICOM reports whether a response of
// multipart/related; type="application/dicom" satisfies the Accept header
// value accept (for several Accept fields, join them with commas), as
// WADO-RS Retrieve Instances needs (PS3.18 8.7.3). A missing or empty
// header, or one in which no element parses, accepts it: the media type is
// the default of the transaction.
//
// transferSyntax is the transfer-syntax parameter of the deciding media
// range: a UID, "*" when the client takes any, or "" when it did not say,
// in which case PS3.18 makes Explicit VR Little Endian
// (1.2.840.10008.1.2.1) the default. A range whose transfer-syntax is
// neither a UID nor "*" is ignored.
//
// The ranges that match are */*, multipart/*, multipart/related without a
// type parameter and multipart/related; type=application/dicom (quoted or
// not), from least to most specific. Among the most specific ones present
// the highest q decides, so "*/*, multipart/related;
// type=application/dicom; q=0" refuses.
func AcceptsMultipartDICOM(accept string) (ok bool, transferSyntax string) {
	ranges := parseAccept(accept)
	if len(ranges) == 0 {
		return true, ""
	}
	best, ok := negotiate(ranges, func(r mediaRange) int {
		ts, hasTS := r.params["transfer-syntax"]
		if hasTS && ts != "*" && !validUID(ts) {
			return 0
		}
		switch {
		case r.typ == "*":
			return 1
		case r.typ != "multipart":
			return 0
		case r.sub == "*":
			return 2
		case r.sub != "related":
			return 0
		}
		t, hasType := r.params["type"]
		if !hasType {
			return 3
		}
		if strings.EqualFold(t, MediaTypeDICOM) {
			return 4
		}
		return 0
	})
	if !ok {
		return false, ""
	}
	if best.typ == "multipart" && best.sub == "related" {
		if _, hasType := best.params["type"]; hasType {
			transferSyntax = best.params["transfer-syntax"]
		}
	}
	return true, transferSyntax
}

// AcceptsJSON reports whether a DICOM JSON response (metadata, QIDO-RS
// results, the STOW-RS response) satisfies the Accept header value
// accept: application/dicom+json, application/json, application/* and */*
// match. A missing or empty header, or one in which no element parses,
// accepts it (application/dicom+json is the default of these
// transactions). A q of 0 on the most specific matching range refuses.
func AcceptsJSON(accept string) bool {
	ranges := parseAccept(accept)
	if len(ranges) == 0 {
		return true
	}
	_, ok := negotiate(ranges, func(r mediaRange) int {
		switch {
		case r.typ == "*":
			return 1
		case r.typ != "application":
			return 0
		case r.sub == "*":
			return 2
		case r.sub == "dicom+json" || r.sub == "json":
			return 3
		}
		return 0
	})
	return ok
}

package dcat

import (
	"strconv"
	"strings"
)

// representations are the media types of each format, most usual first.
var representations = []struct {
	format string
	types  []string
}{
	{FormatJSONLD, []string{"application/ld+json", "application/json"}},
	{FormatTurtle, []string{"text/turtle", "application/x-turtle"}},
}

// Negotiate picks the format to answer a request with from its Accept
// header: FormatJSONLD for application/ld+json (or application/json),
// FormatTurtle for text/turtle. Each format gets the q value of the most
// specific media range that matches it (RFC 9110 section 12.5.1); the higher
// q wins, JSON-LD on a tie. With no Accept header, or none that accepts
// either format, the answer is JSON-LD.
func Negotiate(accept string) (format string) {
	ranges := parseAccept(accept)
	best, bestQ := FormatJSONLD, -1.0
	for _, rep := range representations {
		q := 0.0
		spec := 0
		for _, r := range ranges {
			for _, t := range rep.types {
				if s := matches(r.mediaType, t); s > spec || (s == spec && s > 0 && r.q > q) {
					spec, q = s, r.q
				}
			}
		}
		if q > bestQ {
			best, bestQ = rep.format, q
		}
	}
	if bestQ <= 0 {
		return FormatJSONLD
	}
	return best
}

// MediaType returns the Content-Type to answer with in a format.
func MediaType(format string) string {
	if format == FormatTurtle {
		return "text/turtle; charset=utf-8"
	}
	return "application/ld+json"
}

// acceptRange is one media range of an Accept header with its q value.
type acceptRange struct {
	mediaType string
	q         float64
}

// parseAccept splits an Accept header into media ranges, lower-cased;
// elements that do not parse are dropped.
func parseAccept(accept string) []acceptRange {
	var out []acceptRange
	for _, e := range strings.Split(accept, ",") {
		parts := strings.Split(e, ";")
		mt := strings.ToLower(strings.TrimSpace(parts[0]))
		if typ, sub, ok := strings.Cut(mt, "/"); !ok || typ == "" || sub == "" || (typ == "*" && sub != "*") {
			continue
		}
		q, ok := 1.0, true
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				var err error
				q, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
				ok = err == nil && q >= 0 && q <= 1
			}
		}
		if ok {
			out = append(out, acceptRange{mt, q})
		}
	}
	return out
}

// matches returns how specifically a media range matches a media type: 3
// for the type itself, 2 for type/*, 1 for */*, 0 for no match.
func matches(r, t string) int {
	switch {
	case r == t:
		return 3
	case r == "*/*":
		return 1
	case strings.HasSuffix(r, "/*") && strings.HasPrefix(t, strings.TrimSuffix(r, "*")):
		return 2
	}
	return 0
}

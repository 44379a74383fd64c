package dicomweb

import "strings"

// Media types this package reads and writes.
const (
	MediaTypeDICOM            = "application/dicom"
	MediaTypeDICOMJSON        = "application/dicom+json"
	MediaTypeJSON             = "application/json"
	MediaTypeMultipartRelated = "multipart/related"
)

// parseMediaType parses `type/subtype *( ";" name "=" value )` into the
// lower-cased media type and parameters with lower-cased names.
//
// mime.ParseMediaType is not used because it rejects unquoted parameter
// values holding a slash, and DICOMweb clients commonly send exactly that:
// `multipart/related; type=application/dicom; boundary=x`. Here an unquoted
// value runs to the next semicolon and may hold any visible ASCII
// character but the double quote. Quoted values may hold backslash
// escapes. Duplicate parameter names (two boundaries, say) and control
// characters anywhere make the whole header invalid.
func parseMediaType(s string) (mediaType string, params map[string]string, ok bool) {
	end := strings.IndexByte(s, ';')
	if end < 0 {
		end = len(s)
	}
	mediaType = strings.ToLower(strings.Trim(s[:end], " \t"))
	typ, sub, found := strings.Cut(mediaType, "/")
	if !found || !isToken(typ) || !isToken(sub) {
		return "", nil, false
	}
	params = map[string]string{}
	rest := s[end:]
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			return mediaType, params, true
		}
		if rest[0] != ';' {
			return "", nil, false
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		if rest == "" {
			return mediaType, params, true // a trailing semicolon is harmless
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return "", nil, false
		}
		name := strings.ToLower(strings.TrimRight(rest[:eq], " \t"))
		if !isToken(name) {
			return "", nil, false
		}
		if _, dup := params[name]; dup {
			return "", nil, false
		}
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var value string
		if rest != "" && rest[0] == '"' {
			var b strings.Builder
			j, closed := 1, false
			for j < len(rest) {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					c = rest[j+1]
					j++
				} else if c == '"' {
					closed = true
					j++
					break
				}
				if (c < 0x20 && c != '\t') || c >= 0x7F {
					return "", nil, false
				}
				b.WriteByte(c)
				j++
			}
			if !closed {
				return "", nil, false
			}
			value, rest = b.String(), rest[j:]
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				j = len(rest)
			}
			value, rest = strings.TrimRight(rest[:j], " \t"), rest[j:]
			for k := 0; k < len(value); k++ {
				if c := value[k]; c <= 0x20 || c >= 0x7F || c == '"' {
					return "", nil, false
				}
			}
		}
		params[name] = value
	}
}

// isToken reports whether s is a non-empty token of RFC 9110 section 5.6.2.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// splitList splits a comma-separated header value, leaving commas inside
// quoted strings alone, and drops empty elements.
func splitList(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				if e := strings.Trim(s[start:i], " \t"); e != "" {
					out = append(out, e)
				}
				start = i + 1
			}
		}
	}
	if e := strings.Trim(s[start:], " \t"); e != "" {
		out = append(out, e)
	}
	return out
}

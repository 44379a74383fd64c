package lens

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// MarshalJSON writes the simplified query back in the Explorer's form,
// {"ast": NODE, "id": ...}, with values in a form Parse reads back to the
// same canonical query (codes where a catalogue code stands for a set of
// matches, plain DICOM values, ICD-10 codes and free text otherwise). The
// hub can use it to forward a normalised query.
func (q *Query) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"ast":`)
	encodeNode(&b, q.Root)
	if q.ID != "" {
		b.WriteString(`,"id":`)
		b.Write(jsonString(q.ID))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func encodeNode(b *bytes.Buffer, n *Node) {
	if n.Cond != nil {
		encodeCond(b, n.Cond)
		return
	}
	b.WriteString(`{"operand":"` + string(n.Op) + `","children":[`)
	for i, c := range n.Children {
		if i > 0 {
			b.WriteByte(',')
		}
		encodeNode(b, c)
	}
	b.WriteString("]}")
}

func encodeCond(b *bytes.Buffer, c *Condition) {
	b.WriteString(`{"key":"` + c.Attr.Key() + `","type":"`)
	if c.Attr.Numeric() {
		switch {
		case c.Negated:
			b.WriteString(tNotEquals + `","system":"","value":` + strconv.Itoa(*c.Min))
		case c.Min != nil && c.Max != nil && *c.Min == *c.Max:
			b.WriteString(tEquals + `","system":"","value":` + strconv.Itoa(*c.Min))
		case c.Min != nil && c.Max != nil && *c.Min > *c.Max:
			// An empty range (a BETWEEN whose bounds round past each
			// other): a fractional range reads back the same.
			h := strconv.FormatFloat(float64(*c.Max)+0.5, 'f', -1, 64)
			b.WriteString(tBetween + `","system":"","value":{"min":` + h + `,"max":` + h + `}`)
		case c.Min != nil && c.Max != nil:
			b.WriteString(tBetween + `","system":"","value":{"min":` + strconv.Itoa(*c.Min) + `,"max":` + strconv.Itoa(*c.Max) + `}`)
		case c.Min != nil:
			b.WriteString(tBetween + `","system":"","value":{"min":` + strconv.Itoa(*c.Min) + `}`)
		default:
			b.WriteString(tBetween + `","system":"","value":{"max":` + strconv.Itoa(*c.Max) + `}`)
		}
		b.WriteByte('}')
		return
	}
	vals := values(c)
	switch {
	case c.Contains:
		b.WriteString(tContains)
	case c.Negated:
		b.WriteString(tNotEquals)
	case len(vals) == 1:
		b.WriteString(tEquals)
	default:
		b.WriteString(tIn)
	}
	b.WriteString(`","system":"","value":`)
	if len(vals) == 1 {
		b.Write(jsonString(vals[0]))
	} else {
		b.WriteByte('[')
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(jsonString(v))
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
}

// values returns Lens values that Parse turns into c's matches.
func values(c *Condition) []string {
	have := map[Match]bool{}
	for _, m := range c.Matches {
		have[m] = true
	}
	covered := map[Match]bool{}
	var out []string
	// cover adds the catalogue terms whose matches are all wanted and
	// not part of a larger such term (for NOT_EQUALS, the single term
	// whose matches are exactly the wanted ones).
	cover := func(terms map[string][]Match) {
		var fit []string
		for code, ms := range terms {
			ok := len(ms) > 0
			for _, m := range ms {
				ok = ok && have[m]
			}
			if ok && (!c.Negated || len(ms) == len(c.Matches)) {
				fit = append(fit, code)
			}
		}
		slices.Sort(fit)
		for i, code := range fit {
			maximal := true
			for j, other := range fit {
				// Drop a term inside a larger one, and all but the first
				// of terms with the same matches.
				if i != j && subset(terms[code], terms[other]) && (len(terms[other]) > len(terms[code]) || j < i) {
					maximal = false
				}
			}
			if maximal {
				out = append(out, code)
				for _, m := range terms[code] {
					covered[m] = true
				}
			}
			if c.Negated && maximal {
				return
			}
		}
	}
	switch c.Attr {
	case Diagnosis:
		cover(catalogueTerms().diagnosis)
	case BodyPart:
		cover(catalogueTerms().bodyPart)
	case Manufacturer:
		if !c.Contains {
			cover(catalogueTerms().vendor)
		}
	}
	for _, m := range c.Matches {
		if covered[m] {
			continue
		}
		switch m.Kind {
		case Prefix:
			if len(m.Value) > 3 {
				out = append(out, m.Value[:3]+"."+m.Value[3:])
			} else {
				out = append(out, m.Value)
			}
		case Exact, Substring:
			out = append(out, m.Value)
		}
	}
	return out
}

func subset(a, b []Match) bool {
	for _, m := range a {
		if !slices.Contains(b, m) {
			return false
		}
	}
	return true
}

// terms are the catalogue terms that stand for several matches, by the
// value that encodes them. They are worked out on the first MarshalJSON,
// not when the binary starts.
type terms struct{ diagnosis, bodyPart, vendor map[string][]Match }

var catalogueTerms = sync.OnceValue(func() terms {
	t := terms{map[string][]Match{}, map[string][]Match{}, map[string][]Match{}}
	for k := range diagnoses {
		ms, _, _ := diagnosis(k, "")
		if _, err := strconv.Atoi(k); err == nil {
			t.diagnosis["SNOMEDCT"+k] = sortMatches(ms)
		} else {
			t.diagnosis[strings.ToLower(k)] = sortMatches(ms)
		}
	}
	for k := range bodyParts {
		ms, _, _ := bodyPart(k)
		if len(ms) > 1 {
			t.bodyPart["SNOMEDCT"+k] = sortMatches(ms)
		}
	}
	for k, v := range vendorCodes {
		t.vendor[strings.ToLower(k)] = sortMatches(vendorMatches(v))
	}
	return t
})

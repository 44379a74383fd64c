package dcat

import (
	"strings"
	"unicode/utf8"
)

// The export first builds a small graph of resources, then writes it as
// Turtle or JSON-LD. Blank nodes appear only nested inside the one resource
// that points to them, which both formats express without labels, so the
// two outputs are the same graph.

// termKind says what a term is.
type termKind int

const (
	iriTerm termKind = iota
	literalTerm
	blankTerm
)

// term is an object of a statement.
type term struct {
	kind termKind
	// value is the IRI or the literal's lexical form.
	value string
	// lang and datatype qualify a literal (at most one is set).
	lang, datatype string
	// node is the nested resource of a blank node.
	node *resource
}

// resource is a subject with its statements; iri is "" for a blank node.
type resource struct {
	iri   string
	props []statement
	// seen holds the IRI and literal statements already added.
	seen map[statementKey]bool
}

// statementKey identifies a statement whose object is not a blank node.
type statementKey struct {
	pred                  string
	kind                  termKind
	value, lang, datatype string
}

// statement is one predicate and object of a resource.
type statement struct {
	pred string
	obj  term
}

func iri(s string) term { return term{kind: iriTerm, value: s} }

// plain is a literal without language or datatype.
func plain(s string) term { return term{kind: literalTerm, value: clean(s)} }

// english is a literal tagged "en".
func english(s string) term { return term{kind: literalTerm, value: clean(s), lang: "en"} }

func typed(s, datatype string) term {
	return term{kind: literalTerm, value: clean(s), datatype: datatype}
}

func blank(r *resource) term { return term{kind: blankTerm, node: r} }

// clean makes text valid UTF-8, so that both writers emit the same string.
func clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// add appends statements, skipping an IRI or literal object the resource
// already has for that predicate (RDF graphs are sets; this keeps the
// output free of repeats).
func (r *resource) add(pred string, objs ...term) {
	for _, o := range objs {
		if o.kind != blankTerm {
			k := statementKey{pred, o.kind, o.value, o.lang, o.datatype}
			if r.seen[k] {
				continue
			}
			if r.seen == nil {
				r.seen = map[statementKey]bool{}
			}
			r.seen[k] = true
		}
		r.props = append(r.props, statement{pred, o})
	}
}

// types adds rdf:type statements.
func (r *resource) types(classes ...string) {
	for _, c := range classes {
		r.add(nsRDF+"type", iri(c))
	}
}

// group is a predicate with its objects, in order of first appearance.
type group struct {
	pred string
	objs []term
}

// groups returns the statements grouped by predicate, rdf:type first.
func (r *resource) groups() []group {
	var out []group
	index := map[string]int{}
	for _, s := range r.props {
		i, ok := index[s.pred]
		if !ok {
			i = len(out)
			index[s.pred] = i
			out = append(out, group{pred: s.pred})
		}
		out[i].objs = append(out[i].objs, s.obj)
	}
	for i, g := range out {
		if g.pred == nsRDF+"type" && i > 0 {
			copy(out[1:i+1], out[:i])
			out[0] = g
		}
	}
	return out
}

// document is the set of described resources, in writing order.
type document struct {
	roots     []*resource
	described map[string]*resource
}

func newDocument() *document {
	return &document{described: map[string]*resource{}}
}

// describe returns the resource for an IRI, creating it on first use;
// fresh says whether it was just created.
func (d *document) describe(iri string) (r *resource, fresh bool) {
	if r, ok := d.described[iri]; ok {
		return r, false
	}
	r = &resource{iri: iri}
	d.described[iri] = r
	d.roots = append(d.roots, r)
	return r, true
}

// compact returns prefix:local for an IRI in a declared namespace whose
// local part is safe in both Turtle and JSON-LD, or "" otherwise.
func compact(s string) string {
	for _, p := range prefixes {
		if local, ok := strings.CutPrefix(s, p.ns); ok && safeLocal(local) {
			return p.prefix + ":" + local
		}
	}
	return ""
}

// safeLocal accepts a letter followed by letters, digits, '_' and '-'.
func safeLocal(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// safeIRI percent-encodes the characters that may not appear in an IRI
// (controls, space and <>"{}|\^`), so that any string the export uses as an
// IRI can be written between angle brackets in Turtle. Non-ASCII
// characters are kept: IRIs allow them.
func safeIRI(s string) string {
	s = clean(s)
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c == 0x7f || strings.IndexByte(`<>"{}|\^`+"`", c) >= 0 {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

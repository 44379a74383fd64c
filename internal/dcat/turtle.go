package dcat

import (
	"bufio"
	"io"
	"strings"
)

// writeTurtle writes a document as Turtle (RDF 1.1 Turtle, W3C
// Recommendation 2014): prefixes first, then one block per resource, with
// blank nodes nested in square brackets.
func writeTurtle(w io.Writer, doc *document) error {
	bw := bufio.NewWriter(w)
	for _, p := range prefixes {
		bw.WriteString("@prefix " + p.prefix + ": <" + p.ns + "> .\n")
	}
	for _, r := range doc.roots {
		bw.WriteString("\n" + turtleIRI(r.iri))
		turtleProps(bw, r, 1)
		bw.WriteString(" .\n")
	}
	return bw.Flush()
}

// turtleProps writes the predicate-object list of a resource.
func turtleProps(w *bufio.Writer, r *resource, depth int) {
	indent := strings.Repeat("    ", depth)
	for i, g := range r.groups() {
		if i > 0 {
			w.WriteString(" ;")
		}
		w.WriteString("\n" + indent)
		if g.pred == nsRDF+"type" {
			w.WriteString("a")
		} else {
			w.WriteString(turtleIRI(g.pred))
		}
		w.WriteString(" ")
		for j, o := range g.objs {
			if j > 0 {
				w.WriteString(" , ")
			}
			turtleObject(w, o, depth)
		}
	}
}

func turtleObject(w *bufio.Writer, o term, depth int) {
	switch o.kind {
	case iriTerm:
		w.WriteString(turtleIRI(o.value))
	case literalTerm:
		w.WriteString(turtleString(o.value))
		switch {
		case o.lang != "":
			w.WriteString("@" + o.lang)
		case o.datatype != "":
			w.WriteString("^^" + turtleIRI(o.datatype))
		}
	case blankTerm:
		w.WriteString("[")
		turtleProps(w, o.node, depth+1)
		w.WriteString("\n" + strings.Repeat("    ", depth) + "]")
	}
}

// turtleIRI writes an IRI as a prefixed name when it has a safe one, and
// between angle brackets otherwise. Every IRI of the document went through
// safeIRI or is a constant, so it holds no character an IRIREF forbids.
func turtleIRI(s string) string {
	if c := compact(s); c != "" {
		return c
	}
	return "<" + s + ">"
}

// turtleString writes a short quoted string literal. Quotes, backslashes
// and line breaks are escaped as ECHAR, other control characters as UCHAR;
// everything else, non-ASCII included, is written as UTF-8.
func turtleString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f {
				const hex = "0123456789ABCDEF"
				b.WriteString(`\u00`)
				b.WriteByte(hex[r>>4])
				b.WriteByte(hex[r&15])
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

package dcat

import (
	"encoding/json"
	"io"
)

// writeJSONLD writes a document as JSON-LD: one object with an inline
// @context (the prefixes, so that no remote context is fetched) and a
// @graph of node objects, blank nodes nested without @id. Predicates,
// classes and datatypes are compact IRIs; IRI values are written in full.
func writeJSONLD(w io.Writer, doc *document) error {
	ctx := make(map[string]string, len(prefixes))
	for _, p := range prefixes {
		ctx[p.prefix] = p.ns
	}
	graph := make([]any, 0, len(doc.roots))
	for _, r := range doc.roots {
		graph = append(graph, jsonldNode(r))
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"@context": ctx, "@graph": graph})
}

// jsonldNode returns the node object of a resource.
func jsonldNode(r *resource) map[string]any {
	m := map[string]any{}
	if r.iri != "" {
		m["@id"] = r.iri
	}
	for _, g := range r.groups() {
		if g.pred == nsRDF+"type" {
			types := make([]string, len(g.objs))
			for i, o := range g.objs {
				types[i] = jsonldIRI(o.value)
			}
			m["@type"] = types
			continue
		}
		vals := make([]any, len(g.objs))
		for i, o := range g.objs {
			vals[i] = jsonldValue(o)
		}
		if len(vals) == 1 {
			m[jsonldIRI(g.pred)] = vals[0]
		} else {
			m[jsonldIRI(g.pred)] = vals
		}
	}
	return m
}

// jsonldValue returns the JSON-LD form of an object.
func jsonldValue(o term) any {
	switch o.kind {
	case iriTerm:
		return map[string]string{"@id": o.value}
	case blankTerm:
		return jsonldNode(o.node)
	}
	switch {
	case o.lang != "":
		return map[string]string{"@value": o.value, "@language": o.lang}
	case o.datatype != "":
		return map[string]string{"@value": o.value, "@type": jsonldIRI(o.datatype)}
	}
	return o.value
}

// jsonldIRI returns the compact IRI when there is a safe one.
func jsonldIRI(s string) string {
	if c := compact(s); c != "" {
		return c
	}
	return s
}

#!/usr/bin/python3
"""RDF oracle for the tests of internal/dcat.

Usage: rdf_oracle.py FORMAT FILE [FORMAT FILE]

Parses each FILE with Debian's rdflib in FORMAT ("turtle" or "json-ld") and
prints one JSON object on standard output:

  {"graphs": [{"count": N,
               "datasets": {IRI: [predicate, ...]},
               "triples": [[subject, predicate, object], ...]}, ...],
   "isomorphic": true|false}        (only when two files are given)

Subjects and objects are {"iri": ...}, {"bnode": ...} or
{"value": ..., "lang": ..., "datatype": ...}; literal values are the
lexical forms as written (rdflib's normalisation is turned off). A file that does not parse
makes the script exit with status 1 and rdflib's message on standard error.
"""

import json
import sys

import rdflib
from rdflib.compare import isomorphic
from rdflib.namespace import RDF

DCAT_DATASET = rdflib.URIRef("http://www.w3.org/ns/dcat#Dataset")


def term(t):
    if isinstance(t, rdflib.URIRef):
        return {"iri": str(t)}
    if isinstance(t, rdflib.BNode):
        return {"bnode": str(t)}
    out = {"value": str(t)}
    if t.language:
        out["lang"] = t.language
    if t.datatype:
        out["datatype"] = str(t.datatype)
    return out


def report(g):
    datasets = {}
    for s in g.subjects(RDF.type, DCAT_DATASET):
        datasets[str(s)] = sorted({str(p) for p in g.predicates(s)})
    return {
        "count": len(g),
        "datasets": datasets,
        "triples": [[term(s), str(p), term(o)] for s, p, o in g],
    }


def main(args):
    if len(args) not in (2, 4):
        sys.exit(__doc__)
    rdflib.NORMALIZE_LITERALS = False
    graphs = []
    for fmt, path in zip(args[0::2], args[1::2]):
        g = rdflib.Graph()
        try:
            g.parse(path, format=fmt)
        except Exception as e:  # any parser error is the answer
            print("%s: %s: %s" % (path, type(e).__name__, e), file=sys.stderr)
            sys.exit(1)
        graphs.append(g)
    out = {"graphs": [report(g) for g in graphs]}
    if len(graphs) == 2:
        out["isomorphic"] = isomorphic(graphs[0], graphs[1])
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1:])

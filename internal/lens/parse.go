package lens

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxValueLen bounds a string value of a condition, and the id.
const maxValueLen = 256

// maxNumber bounds numbers: whole years never come near it, and it keeps
// every bound exactly representable.
const maxNumber = 1e6

// Parse reads a query in any of the three forms (see the package
// documentation) with DefaultLimits. Every error is an *Error.
func Parse(body []byte) (*Query, error) { return DefaultLimits.Parse(body) }

// Parse reads a query with these limits.
func (l Limits) Parse(body []byte) (*Query, error) {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxLeaves <= 0 {
		l.MaxLeaves = DefaultLimits.MaxLeaves
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	p := &parser{lim: l}
	return p.top(body, true)
}

type parser struct {
	lim    Limits
	leaves int
}

func errf(path, format string, args ...any) *Error {
	return &Error{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func (p *parser) decode(body []byte) (any, error) {
	if len(body) > p.lim.MaxBytes {
		return nil, errf("", "query larger than %d bytes", p.lim.MaxBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errf("", "empty query")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errf("", "malformed JSON: data after the query")
	}
	return v, nil
}

func jsonError(err error) *Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return errf("", "malformed JSON at byte %d", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errf("", "malformed JSON: truncated")
	}
	return errf("", "malformed JSON")
}

// top reads one of the three forms; envelope says whether the envelope
// form is allowed (it is not inside an envelope).
func (p *parser) top(body []byte, envelope bool) (*Query, error) {
	v, err := p.decode(body)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errf("", "a query must be a JSON object")
	}
	q := &Query{}
	var root any
	path := ""
	switch {
	case has(obj, "ast"):
		if id, ok := obj["id"]; ok && id != nil {
			s, ok := id.(string)
			if !ok {
				return nil, errf("id", "must be a string")
			}
			if len(s) > maxValueLen {
				return nil, errf("id", "longer than %d bytes", maxValueLen)
			}
			q.ID = s
		}
		root, path = obj["ast"], "ast"
	case has(obj, "query") || has(obj, "lang"):
		if !envelope {
			return nil, errf("query", "an envelope inside an envelope")
		}
		if lang, ok := obj["lang"]; ok {
			s, _ := lang.(string)
			if !strings.EqualFold(s, "ast") {
				return nil, errf("lang", "unsupported query language%s (want ast)", quote(s))
			}
		}
		s, ok := obj["query"].(string)
		if !ok {
			return nil, errf("query", "must be a base64 string")
		}
		raw, err := unbase64(s)
		if err != nil {
			return nil, errf("query", "not valid base64")
		}
		return p.top(raw, false)
	case has(obj, "operand") || has(obj, "key"):
		root = obj
	default:
		return nil, errf("", "not a Lens query: no ast, query, operand or key")
	}
	n, err := p.node(root, path, 1)
	if err != nil {
		return nil, err
	}
	q.Root = simplify(n)
	return q, nil
}

func has(obj map[string]any, k string) bool {
	_, ok := obj[k]
	return ok
}

func unbase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	var last error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		last = err
	}
	return nil, last
}

func child(path string, i int) string {
	if path == "" {
		return "children[" + strconv.Itoa(i) + "]"
	}
	return path + ".children[" + strconv.Itoa(i) + "]"
}

func member(path, m string) string {
	if path == "" {
		return m
	}
	return path + "." + m
}

func (p *parser) node(v any, path string, depth int) (*Node, error) {
	if depth > p.lim.MaxDepth {
		return nil, errf(path, "nested deeper than %d levels", p.lim.MaxDepth)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errf(path, "a node must be a JSON object")
	}
	if op, ok := obj["operand"]; ok {
		s, _ := op.(string)
		n := &Node{Op: Op(strings.ToUpper(s))}
		switch n.Op {
		case And, Or, Not:
		default:
			return nil, errf(member(path, "operand"), "unknown operand%s (want AND, OR or NOT)", quote(s))
		}
		kids, ok := obj["children"].([]any)
		if !ok {
			if c, present := obj["children"]; !present || c == nil {
				if n.Op != Not {
					return n, nil // Lens's empty query may omit them
				}
			}
			return nil, errf(member(path, "children"), "must be an array of nodes")
		}
		if n.Op == Not && len(kids) != 1 {
			return nil, errf(member(path, "children"), "NOT takes exactly one child, not %d", len(kids))
		}
		for i, k := range kids {
			c, err := p.node(k, child(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, c)
		}
		return n, nil
	}
	if _, ok := obj["key"]; !ok {
		return nil, errf(path, "a node needs an operand or a key")
	}
	c, err := p.condition(obj, path)
	if err != nil {
		return nil, err
	}
	return &Node{Cond: c}, nil
}

func (p *parser) leaf(path string, n int) error {
	p.leaves += n
	if p.leaves > p.lim.MaxLeaves {
		return errf(path, "more than %d conditions", p.lim.MaxLeaves)
	}
	return nil
}

func (p *parser) condition(obj map[string]any, path string) (*Condition, error) {
	key, ok := obj["key"].(string)
	if !ok {
		return nil, errf(member(path, "key"), "must be a string")
	}
	attr, ok := keys[strings.ToUpper(strings.TrimSpace(key))]
	if !ok {
		return nil, errf(member(path, "key"), "unknown key%s", quote(key))
	}
	typ, ok := obj["type"].(string)
	if !ok {
		if _, present := obj["type"]; !present {
			return nil, errf(member(path, "type"), "missing")
		}
		return nil, errf(member(path, "type"), "must be a string")
	}
	typ = strings.ToUpper(strings.TrimSpace(typ))
	if !knownTypes[typ] {
		return nil, errf(member(path, "type"), "unknown type%s", quote(typ))
	}
	if !allowed(attr, typ) {
		return nil, errf(member(path, "type"), "%s is not allowed for %s", typ, attr)
	}
	var system string
	if s, ok := obj["system"]; ok && s != nil {
		if system, ok = s.(string); !ok {
			return nil, errf(member(path, "system"), "must be a string")
		}
		if len(system) > maxValueLen {
			return nil, errf(member(path, "system"), "longer than %d bytes", maxValueLen)
		}
	}
	val, ok := obj["value"]
	if !ok {
		return nil, errf(member(path, "value"), "missing")
	}
	vpath := member(path, "value")
	c := &Condition{Attr: attr, Negated: typ == tNotEquals, Contains: typ == tContains}
	if attr.Numeric() {
		if err := p.leaf(path, 1); err != nil {
			return nil, err
		}
		if err := numeric(c, typ, val, vpath); err != nil {
			return nil, err
		}
		return c, nil
	}
	var vals []string
	var paths []string
	switch typ {
	case tIn:
		list, ok := val.([]any)
		if !ok {
			return nil, errf(vpath, "IN takes an array of strings")
		}
		if len(list) == 0 {
			return nil, errf(vpath, "IN needs at least one value")
		}
		if err := p.leaf(path, len(list)); err != nil {
			return nil, err
		}
		for i, e := range list {
			s, ok := e.(string)
			if !ok {
				return nil, errf(vpath+"["+strconv.Itoa(i)+"]", "must be a string")
			}
			vals = append(vals, s)
			paths = append(paths, vpath+"["+strconv.Itoa(i)+"]")
		}
	default:
		s, ok := val.(string)
		if !ok {
			return nil, errf(vpath, "%s of %s takes a string", typ, attr)
		}
		if err := p.leaf(path, 1); err != nil {
			return nil, err
		}
		vals, paths = []string{s}, []string{vpath}
	}
	for i, raw := range vals {
		if err := c.addValue(raw, system, paths[i]); err != nil {
			return nil, err
		}
	}
	c.Matches = sortMatches(c.Matches)
	c.Labels = sortStrings(c.Labels)
	return c, nil
}

// addValue reads one value of a coded condition (every attribute but the
// numeric ones) and adds its matches and label to c; c.Contains must be
// set first. system is the terminology the value names, if any.
func (c *Condition) addValue(raw, system, path string) error {
	s := strings.TrimSpace(raw)
	switch {
	case s == "":
		return errf(path, "empty value")
	case len(s) > maxValueLen:
		return errf(path, "longer than %d bytes", maxValueLen)
	case !utf8.ValidString(s):
		return errf(path, "not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errf(path, "control character in value")
		}
	}
	var ms []Match
	var label string
	ok := false
	switch c.Attr {
	case Gender:
		var m Match
		m, label, ok = gender(s)
		ms = []Match{m}
	case Diagnosis:
		ms, label, ok = diagnosis(s, system)
	case Modality:
		var m Match
		m, label, ok = modality(s)
		ms = []Match{m}
	case BodyPart:
		ms, label, ok = bodyPart(s)
	case Manufacturer:
		ms, label, ok = manufacturer(s, c.Contains)
	}
	if !ok {
		return errf(path, "unknown %s value%s", c.Attr, quote(s))
	}
	c.Matches = append(c.Matches, ms...)
	c.Labels = append(c.Labels, label)
	return nil
}

// number reads a JSON number within ±maxNumber.
func number(v any, path string) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errf(path, "must be a number")
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxNumber {
		return 0, errf(path, "number out of range")
	}
	return f, nil
}

func intp(i int) *int { return &i }

// numeric fills the whole-year bounds of a numeric condition.
func numeric(c *Condition, typ string, val any, path string) error {
	switch typ {
	case tEquals, tNotEquals:
		f, err := number(val, path)
		if err != nil {
			return err
		}
		if f != math.Trunc(f) {
			return errf(path, "%s of %s takes a whole number", typ, c.Attr)
		}
		c.Min, c.Max = intp(int(f)), intp(int(f))
	case tGreaterThan:
		f, err := number(val, path)
		if err != nil {
			return err
		}
		c.Min = intp(int(math.Floor(f)) + 1)
	case tLowerThan:
		f, err := number(val, path)
		if err != nil {
			return err
		}
		c.Max = intp(int(math.Ceil(f)) - 1)
	case tBetween:
		obj, ok := val.(map[string]any)
		if !ok {
			return errf(path, "BETWEEN takes {\"min\": a, \"max\": b}")
		}
		var lo, hi *float64
		for _, side := range []string{"min", "max"} {
			v, ok := obj[side]
			if !ok || v == nil {
				continue
			}
			f, err := number(v, path+"."+side)
			if err != nil {
				return err
			}
			if side == "min" {
				lo = &f
			} else {
				hi = &f
			}
		}
		if hi != nil && *hi == 0 && lo != nil && *lo > 0 {
			hi = nil // Lens: an empty "to" field, shown as "≥ min"
		}
		if lo == nil && hi == nil {
			return errf(path, "BETWEEN needs min or max")
		}
		if lo != nil && hi != nil && *lo > *hi {
			return errf(path, "min is greater than max")
		}
		if lo != nil {
			c.Min = intp(int(math.Ceil(*lo)))
		}
		if hi != nil {
			c.Max = intp(int(math.Floor(*hi)))
		}
	}
	c.Labels = []string{rangeLabel(c.Min, c.Max, typ)}
	return nil
}

func rangeLabel(lo, hi *int, typ string) string {
	switch {
	case lo != nil && hi != nil && *lo == *hi:
		if typ == tNotEquals {
			return "!= " + strconv.Itoa(*lo)
		}
		return "= " + strconv.Itoa(*lo)
	case lo != nil && hi != nil:
		return strconv.Itoa(*lo) + ".." + strconv.Itoa(*hi)
	case lo != nil:
		return ">= " + strconv.Itoa(*lo)
	default:
		return "<= " + strconv.Itoa(*hi)
	}
}

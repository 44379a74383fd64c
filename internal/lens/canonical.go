package lens

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

func sortStrings(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func sortMatches(ms []Match) []Match {
	slices.SortFunc(ms, func(a, b Match) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		return strings.Compare(a.Value, b.Value)
	})
	return slices.Compact(ms)
}

// simplify returns the canonical tree of n: nested ANDs and ORs flattened,
// operators with one child replaced by it, trues (empty ANDs and ORs)
// absorbed, double NOTs cancelled, children sorted, repeated children
// dropped. Every node gets its canonical bytes.
func simplify(n *Node) *Node {
	if n.Cond != nil {
		n.canon = condCanon(n.Cond)
		return n
	}
	if n.Op == Not {
		c := simplify(n.Children[0])
		if c.Op == Not {
			return c.Children[0]
		}
		out := &Node{Op: Not, Children: []*Node{c}}
		out.canon = append(append([]byte(`{"not":`), c.canon...), '}')
		return out
	}
	var kids []*Node
	for _, k := range n.Children {
		c := simplify(k)
		if c.All() {
			if n.Op == Or {
				return simplify(&Node{Op: And})
			}
			continue
		}
		if c.Op == n.Op {
			kids = append(kids, c.Children...)
		} else {
			kids = append(kids, c)
		}
	}
	slices.SortStableFunc(kids, compareNodes)
	kids = slices.CompactFunc(kids, func(a, b *Node) bool { return bytes.Equal(a.canon, b.canon) })
	switch len(kids) {
	case 0:
		out := &Node{Op: And}
		out.canon = []byte(`{"and":[]}`)
		return out
	case 1:
		return kids[0]
	}
	out := &Node{Op: n.Op, Children: kids}
	var b bytes.Buffer
	b.WriteString(`{"` + strings.ToLower(string(n.Op)) + `":[`)
	for i, k := range kids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(k.canon)
	}
	b.WriteString("]}")
	out.canon = b.Bytes()
	return out
}

// compareNodes orders conditions before operators, conditions by
// attribute, then everything by canonical bytes and, for equal ones, by
// labels (so that which of two equivalent conditions survives does not
// depend on the order they came in).
func compareNodes(a, b *Node) int {
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return ra - rb
	}
	if c := bytes.Compare(a.canon, b.canon); c != 0 {
		return c
	}
	if a.Cond != nil && b.Cond != nil {
		return slices.Compare(a.Cond.Labels, b.Cond.Labels)
	}
	return 0
}

func rank(n *Node) int {
	if n.Cond != nil {
		return int(n.Cond.Attr)
	}
	return 100
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func condCanon(c *Condition) []byte {
	var b bytes.Buffer
	b.WriteString(`{"attr":"` + attrInfo[c.Attr].canon + `"`)
	if c.Attr.Numeric() {
		if c.Max != nil {
			b.WriteString(`,"max":` + strconv.Itoa(*c.Max))
		}
		if c.Min != nil {
			b.WriteString(`,"min":` + strconv.Itoa(*c.Min))
		}
	} else {
		b.WriteString(`,"match":[`)
		for i, m := range c.Matches {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(jsonString(m.Kind.String() + ":" + m.Value))
		}
		b.WriteByte(']')
	}
	if c.Negated {
		b.WriteString(`,"not":true`)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// maxDescribe bounds Describe's output.
const maxDescribe = 1000

// Describe renders the query for people (the UI and audit logs), e.g.
// "gender = female AND age at diagnosis 50..70".
func (q *Query) Describe() string {
	var b strings.Builder
	describe(&b, q.Root, false)
	s := b.String()
	if len(s) > maxDescribe {
		cut := maxDescribe
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func utf8RuneStart(c byte) bool { return c&0xC0 != 0x80 }

func describe(b *strings.Builder, n *Node, nested bool) {
	switch {
	case n.All():
		b.WriteString("all patients")
	case n.Op == Not:
		b.WriteString("NOT ")
		c := n.Children[0]
		paren := c.Cond == nil && !c.All()
		if paren {
			b.WriteByte('(')
		}
		describe(b, c, false)
		if paren {
			b.WriteByte(')')
		}
	case n.Op == And || n.Op == Or:
		if nested {
			b.WriteByte('(')
		}
		for i, c := range n.Children {
			if i > 0 {
				b.WriteString(" " + string(n.Op) + " ")
			}
			describe(b, c, c.Op == And || c.Op == Or)
		}
		if nested {
			b.WriteByte(')')
		}
	default:
		describeCond(b, n.Cond)
	}
}

func describeCond(b *strings.Builder, c *Condition) {
	b.WriteString(c.Attr.String())
	b.WriteByte(' ')
	switch {
	case c.Attr.Numeric():
		b.WriteString(c.Labels[0])
		return
	case c.Contains:
		b.WriteString("contains " + strconv.Quote(c.Labels[0]))
		return
	case c.Negated:
		b.WriteString("!= ")
	case len(c.Labels) == 1:
		b.WriteString("= ")
	default:
		b.WriteString("in (" + strings.Join(c.Labels, ", ") + ")")
		return
	}
	b.WriteString(c.Labels[0])
}

// Shape returns the query with its values left out: operators and
// attributes only (a negated condition marked with "!"), for telling
// questions that differ only in their values, such as a sweep over ages.
func (q *Query) Shape() string {
	return shape(q.Root)
}

func shape(n *Node) string {
	if n.Cond != nil {
		s := n.Cond.Attr.Key()
		if n.Cond.Negated {
			s = "!" + s
		}
		return s
	}
	kids := make([]string, len(n.Children))
	for i, c := range n.Children {
		kids[i] = shape(c)
	}
	slices.Sort(kids)
	return string(n.Op) + "(" + strings.Join(kids, ",") + ")"
}

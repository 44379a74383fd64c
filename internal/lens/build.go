package lens

import (
	"strconv"
)

// Queries can be built in Go as well as parsed: a caller that offers
// criteria of its own (the hub's search form) builds the tree with Is,
// IsNot, Contains and Between for conditions and AllOf, AnyOf and Negate
// for operators, then NewQuery checks it against DefaultLimits and
// simplifies it. Values are read exactly as Parse reads them, so a built
// query and the same query parsed from JSON have the same canonical form.

// Is is a condition on a coded attribute (any but AgeAtDiagnosis and
// YearOfDiagnosis): the patient has a value matching one of values, as an
// EQUALS (one value) or IN (several) of Lens would ask. Values are those
// Parse accepts for the attribute: catalogue codes such as
// "SNOMEDCT248152002" or "RID10321", and the words and DICOM values
// listed in the package documentation.
func Is(a Attr, values ...string) (*Node, error) { return coded(a, false, false, values) }

// IsNot is Lens's NOT_EQUALS: the patient has a known value of the
// attribute that does not match value.
func IsNot(a Attr, value string) (*Node, error) { return coded(a, true, false, []string{value}) }

// Contains is a CONTAINS condition on Manufacturer: the manufacturer
// contains value, regardless of ASCII letter case.
func Contains(a Attr, value string) (*Node, error) {
	if a != Manufacturer {
		return nil, errf("", "CONTAINS is not allowed for %s", a)
	}
	return coded(a, false, true, []string{value})
}

func coded(a Attr, negated, contains bool, values []string) (*Node, error) {
	switch {
	case !a.valid():
		return nil, errf("", "unknown attribute")
	case a.Numeric():
		return nil, errf("", "%s takes numbers: use Between", a)
	case len(values) == 0:
		return nil, errf("value", "no value for %s", a)
	}
	c := &Condition{Attr: a, Negated: negated, Contains: contains}
	for i, v := range values {
		path := "value"
		if len(values) > 1 {
			path = "value[" + strconv.Itoa(i) + "]"
		}
		if err := c.addValue(v, "", path); err != nil {
			return nil, err
		}
	}
	c.Matches = sortMatches(c.Matches)
	c.Labels = sortStrings(c.Labels)
	return &Node{Cond: c}, nil
}

// Between is a range condition on a numeric attribute (AgeAtDiagnosis,
// YearOfDiagnosis) in whole years, both bounds inclusive; a nil bound
// leaves that side open, but not both.
func Between(a Attr, min, max *int) (*Node, error) {
	switch {
	case !a.valid():
		return nil, errf("", "unknown attribute")
	case !a.Numeric():
		return nil, errf("", "%s is not numeric", a)
	case min == nil && max == nil:
		return nil, errf("value", "a range of %s needs a lower or an upper bound", a)
	}
	for _, b := range []*int{min, max} {
		if b != nil && (*b > maxNumber || *b < -maxNumber) {
			return nil, errf("value", "number out of range")
		}
	}
	if min != nil && max != nil && *min > *max {
		return nil, errf("value", "min is greater than max")
	}
	c := &Condition{Attr: a}
	if min != nil {
		c.Min = intp(*min)
	}
	if max != nil {
		c.Max = intp(*max)
	}
	c.Labels = []string{rangeLabel(c.Min, c.Max, tBetween)}
	return &Node{Cond: c}, nil
}

// AllOf is an AND of the children; without children it matches every
// patient.
func AllOf(children ...*Node) *Node { return &Node{Op: And, Children: children} }

// AnyOf is an OR of the children; without children it matches every
// patient, as Lens's empty query does.
func AnyOf(children ...*Node) *Node { return &Node{Op: Or, Children: children} }

// Negate is a NOT of n.
func Negate(n *Node) *Node { return &Node{Op: Not, Children: []*Node{n}} }

// NewQuery makes a query of a tree built with the functions above: it
// checks the tree's shape against DefaultLimits and simplifies it as
// Parse does. Every error is an *Error.
func NewQuery(root *Node) (*Query, error) {
	leaves := 0
	if err := check(root, "ast", 1, &leaves); err != nil {
		return nil, err
	}
	return &Query{Root: simplify(root)}, nil
}

// check validates a built tree: operators with children, conditions made
// by the builders, and the depth and leaf limits.
func check(n *Node, path string, depth int, leaves *int) error {
	if n == nil {
		return errf(path, "missing node")
	}
	if depth > DefaultLimits.MaxDepth {
		return errf(path, "nested deeper than %d levels", DefaultLimits.MaxDepth)
	}
	if n.Cond != nil {
		c := n.Cond
		if n.Op != "" || len(n.Children) > 0 {
			return errf(path, "a node is an operator or a condition, not both")
		}
		switch {
		case !c.Attr.valid():
			return errf(path, "unknown attribute")
		case c.Attr.Numeric() && (c.Min == nil && c.Max == nil || len(c.Matches) > 0):
			return errf(path, "a condition on %s needs a range (use Between)", c.Attr)
		case !c.Attr.Numeric() && (len(c.Matches) == 0 || len(c.Labels) == 0 || c.Min != nil || c.Max != nil):
			return errf(path, "a condition on %s needs values (use Is)", c.Attr)
		}
		*leaves += max(1, len(c.Labels))
		if *leaves > DefaultLimits.MaxLeaves {
			return errf(path, "more than %d conditions", DefaultLimits.MaxLeaves)
		}
		return nil
	}
	switch n.Op {
	case And, Or:
	case Not:
		if len(n.Children) != 1 {
			return errf(member(path, "children"), "NOT takes exactly one child, not %d", len(n.Children))
		}
	default:
		return errf(member(path, "operand"), "unknown operand%s (want AND, OR or NOT)", quote(string(n.Op)))
	}
	for i, k := range n.Children {
		if err := check(k, child(path, i), depth+1, leaves); err != nil {
			return err
		}
	}
	return nil
}

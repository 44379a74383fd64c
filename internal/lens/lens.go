package lens

import (
	"errors"
	"strings"
)

// Attr is the patient attribute a condition tests.
type Attr int

// The attributes of EUCAIM's search catalogue.
const (
	Gender Attr = iota + 1
	AgeAtDiagnosis
	Diagnosis
	YearOfDiagnosis
	Modality
	BodyPart
	Manufacturer
)

var attrInfo = [...]struct {
	key, name, canon string
}{
	Gender:          {"SNOMEDCT263495000", "gender", "gender"},
	AgeAtDiagnosis:  {"SNOMEDCT423493009", "age at diagnosis", "age_at_diagnosis"},
	Diagnosis:       {"SNOMEDCT439401001", "diagnosis", "diagnosis"},
	YearOfDiagnosis: {"SNOMEDCT432213005", "year of diagnosis", "year_of_diagnosis"},
	Modality:        {"RID10311", "modality", "modality"},
	BodyPart:        {"SNOMEDCT123037004", "body part", "body_part"},
	Manufacturer:    {"C25392", "manufacturer", "manufacturer"},
}

func (a Attr) valid() bool { return a >= Gender && a <= Manufacturer }

// String is the attribute's name for people, as Describe writes it.
func (a Attr) String() string {
	if !a.valid() {
		return "attribute?"
	}
	return attrInfo[a].name
}

// Key is the catalogue key the Explorer sends for the attribute.
func (a Attr) Key() string {
	if !a.valid() {
		return ""
	}
	return attrInfo[a].key
}

// Numeric reports whether the attribute takes numbers (whole years).
func (a Attr) Numeric() bool { return a == AgeAtDiagnosis || a == YearOfDiagnosis }

// Imaging reports whether the attribute is a property of the patient's
// series rather than of the clinical record.
func (a Attr) Imaging() bool { return a == Modality || a == BodyPart || a == Manufacturer }

// MatchKind says how a Match compares with stored values.
type MatchKind int

// The kinds of matching.
const (
	// Exact: the stored value equals Value: a gender word, or a DICOM
	// code string (upper case, as DICOM writes them) for Modality and
	// BodyPart; Manufacturer compares the trimmed value without regard
	// to ASCII letter case.
	Exact MatchKind = iota + 1
	// Prefix (Diagnosis): the ICD-10 code, upper-cased with its dots
	// removed, starts with Value (e.g. "C341").
	Prefix
	// CancerType (Diagnosis): a cancer condition without an ICD-10 code
	// has this cancer type.
	CancerType
	// Word (Manufacturer): Value, one or more words of capital letters
	// and digits separated by single spaces, occurs as whole words in the
	// manufacturer upper-cased with "_", "-", ".", "," and "/" read as
	// spaces.
	Word
	// Substring (Manufacturer): the upper-cased manufacturer contains
	// Value (ASCII upper-cased).
	Substring
)

var matchKindNames = [...]string{Exact: "exact", Prefix: "prefix", CancerType: "cancer_type", Word: "word", Substring: "substring"}

func (k MatchKind) String() string {
	if k < Exact || k > Substring {
		return "kind?"
	}
	return matchKindNames[k]
}

// Match is one way a coded condition can be satisfied.
type Match struct {
	Kind  MatchKind
	Value string
}

// Condition is one validated leaf of the query, normalised.
type Condition struct {
	Attr Attr
	// Negated is set for NOT_EQUALS: the patient has a row whose value is
	// known and does not match.
	Negated bool
	// Min and Max bound a numeric attribute, inclusive, in whole years;
	// nil leaves that side open. Min > Max matches nothing.
	Min, Max *int
	// Matches lists, for coded attributes, the matches any of which
	// satisfies the condition: sorted, without repeats.
	Matches []Match
	// Labels names what was asked, for Describe: sorted, without repeats.
	Labels []string
	// Contains marks a CONTAINS condition, for Describe.
	Contains bool
}

// Op is a boolean operator.
type Op string

// The operators. A Node with an empty Op is a condition.
const (
	And Op = "AND"
	Or  Op = "OR"
	Not Op = "NOT"
)

// Node is a node of the query tree: an operator with children or a
// condition. An AND without children is true for every patient.
type Node struct {
	Op       Op
	Children []*Node
	Cond     *Condition

	canon []byte // canonical serialisation, set by Parse
}

// All reports whether the node is true for every patient (an AND with no
// children, which is what an empty Lens query becomes).
func (n *Node) All() bool { return n.Op == And && len(n.Children) == 0 }

// Eval evaluates the tree for one patient, given how each condition
// evaluates for that patient.
func (n *Node) Eval(cond func(*Condition) bool) bool {
	switch n.Op {
	case And:
		for _, c := range n.Children {
			if !c.Eval(cond) {
				return false
			}
		}
		return true
	case Or:
		for _, c := range n.Children {
			if c.Eval(cond) {
				return true
			}
		}
		return len(n.Children) == 0
	case Not:
		return !n.Children[0].Eval(cond)
	}
	return cond(n.Cond)
}

// Walk calls fn for every condition of the tree.
func (n *Node) Walk(fn func(*Condition)) {
	if n.Cond != nil {
		fn(n.Cond)
	}
	for _, c := range n.Children {
		c.Walk(fn)
	}
}

// Query is a parsed, validated and simplified federated search.
type Query struct {
	// ID is the id the Explorer gave the query, if any. It is not part of
	// the canonical form.
	ID   string
	Root *Node
}

// Canonical returns the canonical serialisation of the query (a compact
// JSON document, without the id): equivalent queries written differently
// give the same bytes.
func (q *Query) Canonical() []byte {
	out := make([]byte, 0, len(q.Root.canon)+24)
	out = append(out, `{"lens":1,"ast":`...)
	out = append(out, q.Root.canon...)
	return append(out, '}')
}

// Uses reports whether the query has a condition on attribute a.
func (q *Query) Uses(a Attr) bool {
	found := false
	q.Root.Walk(func(c *Condition) { found = found || c.Attr == a })
	return found
}

// ErrInvalid is wrapped by every *Error, for errors.Is.
var ErrInvalid = errors.New("invalid query")

// Error reports why a query was refused and where. Reasons never quote
// long or unprintable values.
type Error struct {
	// Path locates the offending member, such as
	// "ast.children[1].value"; empty for the query as a whole.
	Path   string
	Reason string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "lens: " + e.Reason
	}
	return "lens: " + e.Path + ": " + e.Reason
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// quote renders a value for an error message: short printable values in
// quotes, anything else not at all.
func quote(s string) string {
	if len(s) == 0 || len(s) > 32 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return ""
		}
	}
	return ` "` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// Limits bound the work a query can ask for.
type Limits struct {
	MaxDepth  int // nesting of operators and conditions; the root is at depth 1
	MaxLeaves int // conditions, each value of an IN list counting as one
	MaxBytes  int // of the request body, and of the decoded envelope
}

// DefaultLimits are the limits Parse uses; a zero field of a Limits takes
// its value from here.
var DefaultLimits = Limits{MaxDepth: 16, MaxLeaves: 200, MaxBytes: 64 << 10}

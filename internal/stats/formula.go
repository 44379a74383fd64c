package stats

import (
	"fmt"
	"sort"
	"strings"
)

// Formula limits.
const (
	// MaxFormulaLen bounds a formula's length in bytes.
	MaxFormulaLen = 2000
	// MaxTerms bounds the number of terms after expansion.
	MaxTerms = 200
	// MaxInteraction bounds the number of variables in one term.
	MaxInteraction = 4
)

// ParseFormula parses R's formula notation (the subset documented in
// docs/processing.md), refusing anything else with a clear error.
//
// Accepted: a response, '~', then terms joined by '+': a column name,
// factor(name), interactions a:b, crossings a*b (a + b + a:b), and "- 1"
// or "+ 0" to remove the intercept ("+ 1" keeps it). Terms are ordered
// as R orders them: by the number of variables, then as written.
func ParseFormula(s string) (*Formula, error) {
	if len(s) > MaxFormulaLen {
		return nil, fmt.Errorf("stats: formula longer than %d bytes", MaxFormulaLen)
	}
	toks, err := lexFormula(s)
	if err != nil {
		return nil, err
	}
	p := &fparser{toks: toks}
	f, err := p.parse()
	if err != nil {
		return nil, err
	}
	// Crossings expand (a*b*c is seven terms): the written-out formula,
	// which is what is recorded and sent to nodes, is bounded too.
	if n := len(f.String()); n > MaxFormulaLen {
		return nil, fmt.Errorf("stats: formula longer than %d bytes once its crossings are written out (%d)", MaxFormulaLen, n)
	}
	return f, nil
}

type ftok struct {
	kind byte // 'i' identifier, 'n' number, or the operator itself
	text string
}

func lexFormula(s string) ([]ftok, error) {
	var out []ftok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '~' || c == '+' || c == '-' || c == ':' || c == '*' || c == '(' || c == ')':
			out = append(out, ftok{kind: c, text: string(c)})
			i++
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			out = append(out, ftok{kind: 'i', text: s[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			out = append(out, ftok{kind: 'n', text: s[i:j]})
			i = j
		case c == '^':
			return nil, fmt.Errorf("stats: formula: '^' (crossing to a power) is not supported; write the interactions out with ':'")
		case c == '|':
			return nil, fmt.Errorf("stats: formula: '|' (conditioning or random effects) is not supported")
		case c == '%':
			return nil, fmt.Errorf("stats: formula: %%in%% and other %%-operators are not supported")
		case c == '/':
			return nil, fmt.Errorf("stats: formula: '/' (nesting or division) is not supported; researchers cannot compute new variables")
		case c == ',':
			return nil, fmt.Errorf("stats: formula: ',' (a second argument): factor() takes one column name and no options")
		case c == '`':
			return nil, fmt.Errorf("stats: formula: backquoted names are not supported")
		default:
			return nil, fmt.Errorf("stats: formula: unexpected character %q at offset %d", c, i)
		}
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

type fparser struct {
	toks []ftok
	pos  int
}

func (p *fparser) peek() ftok {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ftok{}
}

func (p *fparser) next() ftok { t := p.peek(); p.pos++; return t }

// fvar is one variable of a formula: a column, maybe under factor().
type fvar struct {
	name   string
	factor bool
}

func (v fvar) label() string {
	if v.factor {
		return "factor(" + v.name + ")"
	}
	return v.name
}

func (p *fparser) parse() (*Formula, error) {
	if len(p.toks) == 0 {
		return nil, fmt.Errorf("stats: formula is empty")
	}
	resp, err := p.variable()
	if err != nil {
		return nil, fmt.Errorf("stats: formula: response: %w", err)
	}
	if resp.factor {
		return nil, fmt.Errorf("stats: formula: factor() is not allowed on the response")
	}
	if t := p.next(); t.kind != '~' {
		return nil, fmt.Errorf("stats: formula: expected '~' after the response, found %q", t.text)
	}
	f := &Formula{Response: resp.name, Intercept: true}
	var terms [][]fvar
	sign := byte('+')
	first := true
	for {
		if !first {
			t := p.next()
			if t.kind == 0 {
				break
			}
			if t.kind != '+' && t.kind != '-' {
				return nil, fmt.Errorf("stats: formula: expected '+' or '-', found %q", t.text)
			}
			sign = t.kind
		} else if p.peek().kind == '-' {
			p.next()
			sign = '-'
		}
		first = false
		if t := p.peek(); t.kind == 'n' {
			p.next()
			switch {
			case t.text == "1" && sign == '+':
				f.Intercept = true
			case t.text == "1" && sign == '-', t.text == "0" && sign == '+':
				f.Intercept = false
			default:
				return nil, fmt.Errorf("stats: formula: the number %q can only be '+ 1', '- 1' or '+ 0'", t.text)
			}
			if nt := p.peek(); nt.kind != 0 && nt.kind != '+' && nt.kind != '-' {
				return nil, fmt.Errorf("stats: formula: %q cannot follow a number (arithmetic is not supported)", nt.text)
			}
			continue
		}
		if sign == '-' {
			return nil, fmt.Errorf("stats: formula: removing terms with '-' is only supported as '- 1'")
		}
		ts, err := p.product()
		if err != nil {
			return nil, err
		}
		terms = append(terms, ts...)
	}
	if len(terms) == 0 && !f.Intercept {
		return nil, fmt.Errorf("stats: formula has no terms and no intercept")
	}
	// Variable order: first appearance, response first.
	order := map[fvar]int{resp: 0}
	for _, t := range terms {
		for _, v := range t {
			if _, ok := order[v]; !ok {
				order[v] = len(order)
			}
		}
	}
	seen := map[string]bool{}
	var uniq [][]fvar
	for _, t := range terms {
		sort.SliceStable(t, func(i, j int) bool { return order[t[i]] < order[t[j]] })
		var d []fvar
		for i, v := range t {
			if i > 0 && v == t[i-1] {
				continue
			}
			d = append(d, v)
		}
		for _, v := range d {
			if v == resp {
				return nil, fmt.Errorf("stats: formula: the response %q also appears on the right", resp.name)
			}
		}
		key := termKey(d)
		if seen[key] {
			continue
		}
		seen[key] = true
		uniq = append(uniq, d)
	}
	if len(uniq) > MaxTerms {
		return nil, fmt.Errorf("stats: formula has more than %d terms", MaxTerms)
	}
	sort.SliceStable(uniq, func(i, j int) bool { return len(uniq[i]) < len(uniq[j]) })
	for _, t := range uniq {
		term := Term{}
		for _, v := range t {
			term.Vars = append(term.Vars, v.name)
			term.Factor = append(term.Factor, v.factor)
		}
		f.Terms = append(f.Terms, term)
	}
	return f, nil
}

func termKey(t []fvar) string {
	var b strings.Builder
	for _, v := range t {
		b.WriteString(v.label())
		b.WriteByte(0)
	}
	return b.String()
}

// product parses a:b*c..., expanding '*' into all its interactions.
func (p *fparser) product() ([][]fvar, error) {
	// groups joined by '*'; each group is an interaction joined by ':'.
	var groups [][]fvar
	for {
		var g []fvar
		for {
			v, err := p.variable()
			if err != nil {
				return nil, err
			}
			g = append(g, v)
			if p.peek().kind != ':' {
				break
			}
			p.next()
		}
		groups = append(groups, g)
		if p.peek().kind != '*' {
			break
		}
		p.next()
		if len(groups) > 8 {
			return nil, fmt.Errorf("stats: formula: too many '*' in one term")
		}
	}
	// All non-empty subsets of groups, in R's order (by size, then as
	// written, which a bit-count-stable order gives).
	n := len(groups)
	var out [][]fvar
	var masks []int
	for m := 1; m < 1<<n; m++ {
		masks = append(masks, m)
	}
	sort.SliceStable(masks, func(i, j int) bool { return popcount(masks[i]) < popcount(masks[j]) })
	for _, m := range masks {
		var t []fvar
		for i := 0; i < n; i++ {
			if m&(1<<i) != 0 {
				t = append(t, groups[i]...)
			}
		}
		if len(dedupVars(t)) > MaxInteraction {
			return nil, fmt.Errorf("stats: formula: an interaction of more than %d variables", MaxInteraction)
		}
		out = append(out, t)
		if len(out) > MaxTerms {
			return nil, fmt.Errorf("stats: formula has more than %d terms", MaxTerms)
		}
	}
	return out, nil
}

func dedupVars(t []fvar) []fvar {
	seen := map[fvar]bool{}
	var out []fvar
	for _, v := range t {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func popcount(m int) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// variable parses a name or factor(name).
func (p *fparser) variable() (fvar, error) {
	t := p.next()
	switch t.kind {
	case 'i':
	case 0:
		return fvar{}, fmt.Errorf("stats: formula ends where a variable was expected")
	case '(':
		return fvar{}, fmt.Errorf("stats: formula: parentheses for grouping are not supported; write the terms out")
	case 'n':
		return fvar{}, fmt.Errorf("stats: formula: the number %q is not a variable (arithmetic is not supported)", t.text)
	default:
		return fvar{}, fmt.Errorf("stats: formula: expected a variable, found %q", t.text)
	}
	if t.text == "." {
		return fvar{}, fmt.Errorf("stats: formula: '.' (all other columns) is not supported; name the columns")
	}
	if p.peek().kind != '(' {
		return fvar{name: t.text}, nil
	}
	// A call: only factor(name).
	if t.text != "factor" {
		return fvar{}, fmt.Errorf("stats: formula: the function %s() is not supported (only factor(); researchers cannot compute new variables)", t.text)
	}
	p.next()
	a := p.next()
	if a.kind != 'i' || a.text == "." {
		return fvar{}, fmt.Errorf("stats: formula: factor() takes one column name")
	}
	if p.peek().kind == '(' {
		return fvar{}, fmt.Errorf("stats: formula: the function %s() is not supported inside factor()", a.text)
	}
	if c := p.next(); c.kind != ')' {
		return fvar{}, fmt.Errorf("stats: formula: factor() takes one column name, found %q", c.text)
	}
	return fvar{name: a.text, factor: true}, nil
}

// String writes the formula back in canonical form.
func (f *Formula) String() string {
	if f == nil {
		return ""
	}
	var parts []string
	for _, t := range f.Terms {
		parts = append(parts, t.label())
	}
	if !f.Intercept {
		parts = append(parts, "0")
	}
	if len(parts) == 0 {
		parts = append(parts, "1")
	}
	return f.Response + " ~ " + strings.Join(parts, " + ")
}

func (t Term) vars() []fvar {
	out := make([]fvar, len(t.Vars))
	for i, n := range t.Vars {
		out[i] = fvar{name: n, factor: i < len(t.Factor) && t.Factor[i]}
	}
	return out
}

func (t Term) label() string {
	var ls []string
	for _, v := range t.vars() {
		ls = append(ls, v.label())
	}
	return strings.Join(ls, ":")
}

// Variables lists the columns the formula uses, response first.
func (f *Formula) Variables() []string {
	if f == nil {
		return nil
	}
	out := []string{f.Response}
	seen := map[string]bool{f.Response: true}
	for _, t := range f.Terms {
		for _, n := range t.Vars {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

package airlock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// The structured formats: JSON objects whose "mosaic_output" member names
// the kind. clients/python/mosaic_output.py writes them; docs/processing.md
// ("The airlock") describes them for other languages.
const (
	FormatTable = "table" // a frequency or magnitude table (Table)
	FormatModel = "model" // a fitted model (Model)
	FormatStats = "stats" // sums, means and other statistics (Stats)
)

// FormatVersion is the version of the structured formats this package
// reads.
const FormatVersion = 1

// Table is a frequency table (Kind "frequency": a count per cell) or a
// magnitude table (Kind "magnitude": per cell a Statistic of a variable
// over the cell's units, their count, and the largest contributions).
type Table struct {
	Output  string `json:"mosaic_output"` // "table"
	Version int    `json:"version"`
	Title   string `json:"title,omitempty"`
	Kind    string `json:"kind"` // frequency, magnitude
	// Statistic of a magnitude table: sum, mean, median, std, var, min,
	// max, mode (min, max and mode always go to review).
	Statistic  string   `json:"statistic,omitempty"`
	Variable   string   `json:"variable,omitempty"`
	Dimensions []string `json:"dimensions,omitempty"`
	Cells      []Cell   `json:"cells"`
}

// Cell is one cell of a Table, or one statistic of Stats.
type Cell struct {
	// Key holds the cell's category in each dimension.
	Key []string `json:"key,omitempty"`
	// Count is how many units (patients, rows) the cell holds.
	Count *float64 `json:"count"`
	// Value is the statistic's value (magnitude tables, stats).
	Value *float64 `json:"value,omitempty"`
	// Top are the largest contributions of single units to the cell's
	// sum, largest first (at least two for sums and means), as ACRO
	// records them for its dominance and p-ratio checks.
	Top []float64 `json:"top,omitempty"`
	// Total is the sum of every unit's contribution, when Value is not
	// that sum (optional: for a sum it is Value, for a mean Value×Count).
	Total *float64 `json:"total,omitempty"`
}

// Model is a fitted model: coefficients, the residual degrees of freedom
// and the number of rows used.
type Model struct {
	Output       string        `json:"mosaic_output"` // "model"
	Version      int           `json:"version"`
	Title        string        `json:"title,omitempty"`
	Family       string        `json:"family,omitempty"`
	Formula      string        `json:"formula,omitempty"`
	N            *float64      `json:"n"`
	DFResidual   *float64      `json:"df_residual"`
	Coefficients []Coefficient `json:"coefficients"`
}

// Coefficient is one term of a Model.
type Coefficient struct {
	Term      string   `json:"term"`
	Estimate  *float64 `json:"estimate"`
	StdError  *float64 `json:"std_error,omitempty"`
	Statistic *float64 `json:"statistic,omitempty"`
	PValue    *float64 `json:"p_value,omitempty"`
}

// Stats is a list of statistics (sums, means, ...) each with its count
// and, for sums and means, its largest contributions.
type Stats struct {
	Output     string `json:"mosaic_output"` // "stats"
	Version    int    `json:"version"`
	Title      string `json:"title,omitempty"`
	Statistics []Stat `json:"statistics"`
}

// Stat is one statistic of Stats.
type Stat struct {
	Name      string `json:"name"`
	Statistic string `json:"statistic"` // sum, mean, count, median, std, var, quantile, min, max, mode
	Cell
}

// kindOf returns the mosaic_output member of a JSON object, and whether
// data is a JSON object at all.
func kindOf(data []byte) (kind string, isObject bool) {
	t := bytes.TrimSpace(data)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return "", false
	}
	var head struct {
		Output *string `json:"mosaic_output"`
	}
	if json.Unmarshal(t, &head) != nil || head.Output == nil {
		return "", true
	}
	if *head.Output == "" {
		return "?", true
	}
	return *head.Output, true
}

// strictDecode decodes data into v, refusing unknown members, and
// members named in another case or twice (Go's decoder would match them
// case-insensitively and keep the last, while Publishable passes every
// member it does not strip exactly as written).
func strictDecode(data []byte, v any) error {
	if err := plainMembers(json.NewDecoder(bytes.NewReader(data))); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("data after the object")
	}
	return nil
}

// checkStructured checks an output in one of the structured formats.
func checkStructured(v *Verdict, pol Policy, perm Permissions, out Output, kind string) {
	switch kind {
	case FormatTable:
		var t Table
		if err := strictDecode(out.Data, &t); err != nil {
			v.add("format", Refuse, "not a valid %s output: %s", kind, jsonProblem(err))
			return
		}
		checkVersion(v, t.Version)
		texts := append([]string{t.Title, t.Statistic, t.Variable}, t.Dimensions...)
		for _, c := range t.Cells {
			texts = append(texts, c.Key...)
		}
		checkTexts(v, out, texts)
		checkTable(v, pol, perm, out, &t)
	case FormatModel:
		var m Model
		if err := strictDecode(out.Data, &m); err != nil {
			v.add("format", Refuse, "not a valid %s output: %s", kind, jsonProblem(err))
			return
		}
		checkVersion(v, m.Version)
		texts := []string{m.Title, m.Family, m.Formula}
		for _, c := range m.Coefficients {
			texts = append(texts, c.Term)
		}
		checkTexts(v, out, texts)
		checkModel(v, pol, &m)
	case FormatStats:
		var s Stats
		if err := strictDecode(out.Data, &s); err != nil {
			v.add("format", Refuse, "not a valid %s output: %s", kind, jsonProblem(err))
			return
		}
		checkVersion(v, s.Version)
		texts := []string{s.Title}
		for _, st := range s.Statistics {
			texts = append(texts, st.Name, st.Statistic)
			texts = append(texts, st.Key...)
		}
		checkTexts(v, out, texts)
		if len(s.Statistics) == 0 {
			v.add("format", Review, "a stats output without statistics")
		}
		for i, st := range s.Statistics {
			checkCell(v, pol, fmt.Sprintf("statistic %d", i+1), st.Statistic, st.Cell, st.Statistic != "count")
		}
	default:
		v.add("type", Refuse, "unknown structured output kind (mosaic_output); known: table, model, stats")
	}
}

// maxStructuredText is how much text (titles, names, labels, terms) a
// structured output may carry in all and still leave without a person.
const maxStructuredText = 8 << 10

// checkTexts sends to review a structured output whose text members
// could carry data: each must pass the log filter's test (short, no long
// digit runs, no dotted identifiers, no pseudonyms), and all of them
// together stay under maxStructuredText.
func checkTexts(v *Verdict, out Output, texts []string) {
	f := &LogFilter{IsPseudonym: out.IsPseudonym, MaxLines: math.MaxInt}
	total := 0
	for _, t := range texts {
		total += len(t)
		if t == "" {
			continue
		}
		if ok, why := f.Line(t); !ok {
			v.add("free-text", Review, "a title, name, label or term holds %s: a person reads it", why)
			return
		}
	}
	if total > maxStructuredText {
		v.add("free-text", Review, "%d bytes of titles, names, labels and terms: a person reads them", total)
	}
}

// jsonProblem names what is wrong with a structured output without
// quoting its values.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("member %q has the wrong type", e.Field)
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at byte %d", e.Offset)
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func checkVersion(v *Verdict, version int) {
	if version != FormatVersion {
		v.add("format", Review, "format version %d; this node reads version %d", version, FormatVersion)
	}
}

// checkTable checks a frequency or magnitude table.
func checkTable(v *Verdict, pol Policy, perm Permissions, out Output, t *Table) {
	switch t.Kind {
	case "frequency", "magnitude":
	default:
		v.add("format", Refuse, "a table's kind must be frequency or magnitude")
		return
	}
	if len(t.Cells) == 0 {
		v.add("format", Review, "a table without cells")
		return
	}
	magnitude := t.Kind == "magnitude"
	if magnitude && t.Statistic == "" {
		v.add("format", Review, "a magnitude table without its statistic")
	}
	ones := 0
	for i, c := range t.Cells {
		if len(t.Dimensions) > 0 && len(c.Key) != len(t.Dimensions) {
			v.add("format", Review, "cell %d has %d categories for %d dimensions", i+1, len(c.Key), len(t.Dimensions))
		}
		if c.Count != nil && *c.Count == 1 {
			ones++
		}
		stat := ""
		if magnitude {
			stat = t.Statistic
		}
		checkCell(v, pol, fmt.Sprintf("cell %d", i+1), stat, c, magnitude)
		if out.IsPseudonym != nil && !perm.RowLevel {
			for _, k := range c.Key {
				if out.IsPseudonym(k) {
					v.add("row-level", Refuse, "cell %d is labelled with a patient pseudonym", i+1)
					break
				}
			}
		}
	}
	if !perm.RowLevel {
		if len(t.Cells) > 1 && ones == len(t.Cells) {
			v.add("row-level", Refuse, "every cell counts one unit: the table lists records")
		}
		if slices.Contains(out.InputRows, len(t.Cells)) && len(t.Cells) > 1 {
			v.add("row-level", Refuse, "the table has as many cells (%d) as an input has rows", len(t.Cells))
		}
	}
}

// checkCell applies the threshold and, for magnitudes, the dominance and
// p-ratio rules to one cell or statistic. where names it in findings.
func checkCell(v *Verdict, pol Policy, where, stat string, c Cell, magnitude bool) {
	if c.Count == nil {
		v.add("threshold", Review, "%s has no count", where)
	} else {
		n := *c.Count
		switch {
		case math.IsNaN(n) || math.IsInf(n, 0) || n != math.Trunc(n):
			v.add("unusual", Review, "%s has a count that is not a whole number", where)
		case n < 0:
			v.add("unusual", Review, "%s has a negative count", where)
		case n == 0:
			if *pol.ZerosDisclose {
				v.add("zeros", Review, "%s is zero: zeros may disclose (structural or not, a person decides)", where)
			}
		case n < float64(pol.CellThreshold):
			v.add("threshold", Refuse, "%s counts fewer than %d units", where, pol.CellThreshold)
		}
	}
	if !magnitude {
		return
	}
	if c.Value == nil {
		v.add("unusual", Review, "%s has no value (missing or not a number)", where)
		return
	}
	if *c.Value < 0 {
		v.add("unusual", Review, "%s has a negative value", where)
	}
	switch stat {
	case "sum", "mean", "total", "average":
		checkDominance(v, pol, where, stat, c)
	case "min", "max", "mode", "minimum", "maximum":
		v.add("statistic", Review, "%s is a %s, which is one unit's value", where, stat)
	case "median", "std", "sd", "var", "variance", "quantile", "count", "iqr":
	default:
		v.add("statistic", Review, "%s has an unknown statistic; a person decides", where)
	}
}

// checkDominance applies the (n, k) dominance rule and the p-ratio rule to
// a sum or a mean: with x1 ≥ x2 ≥ ... the contributions and T their
// total, refused when x1+...+xn > k·T or when T−x1−x2 < p·x1.
func checkDominance(v *Verdict, pol Policy, where, stat string, c Cell) {
	need := max(pol.DominanceN, 2)
	if len(c.Top) < need {
		v.add("dominance", Review, "%s is a %s without its %d largest contributions: dominance cannot be checked", where, stat, need)
		return
	}
	top := slices.Clone(c.Top)
	for _, x := range top {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			v.add("unusual", Review, "%s has a contribution that is not a number", where)
			return
		}
		if x < 0 {
			v.add("unusual", Review, "%s has a negative contribution: dominance cannot be checked", where)
			return
		}
	}
	slices.SortFunc(top, func(a, b float64) int { return -cmpFloat(a, b) })
	var total float64
	switch {
	case c.Total != nil:
		total = *c.Total
	case stat == "mean" || stat == "average":
		if c.Count == nil {
			v.add("dominance", Review, "%s is a mean without its count", where)
			return
		}
		total = *c.Value * *c.Count
	default:
		total = *c.Value
	}
	var topSum float64
	for _, x := range top {
		topSum += x
	}
	// A total under the contributions listed is impossible for
	// non-negative values: the record is inconsistent.
	if math.IsNaN(total) || total <= 0 || total < topSum*(1-1e-9) {
		v.add("unusual", Review, "%s: the total does not agree with its largest contributions", where)
		return
	}
	var nsum float64
	for _, x := range top[:pol.DominanceN] {
		nsum += x
	}
	if nsum > pol.DominanceK*total {
		v.add("dominance", Refuse, "%s: the %d largest contributions make over %g%% of the total", where, pol.DominanceN, pol.DominanceK*100)
	}
	if rest := total - top[0] - top[1]; rest < pol.PRatio*top[0] {
		v.add("p-ratio", Refuse, "%s: the total less the two largest contributions is under %g%% of the largest", where, pol.PRatio*100)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkModel checks a fitted model's residual degrees of freedom and
// values.
func checkModel(v *Verdict, pol Policy, m *Model) {
	switch {
	case m.DFResidual == nil:
		v.add("degrees-of-freedom", Review, "a model without its residual degrees of freedom")
	case math.IsNaN(*m.DFResidual) || *m.DFResidual != math.Trunc(*m.DFResidual):
		v.add("unusual", Review, "residual degrees of freedom that are not a whole number")
	case *m.DFResidual < float64(pol.MinDF):
		v.add("degrees-of-freedom", Refuse, "residual degrees of freedom under %d", pol.MinDF)
	}
	switch {
	case m.N == nil:
		v.add("degrees-of-freedom", Review, "a model without its number of rows: its degrees of freedom cannot be checked")
	case math.IsNaN(*m.N) || *m.N < 0 || *m.N != math.Trunc(*m.N):
		v.add("unusual", Review, "a model whose number of rows is not a whole number")
	case m.DFResidual != nil && *m.DFResidual > *m.N-float64(len(m.Coefficients)):
		// Rows less parameters bound the residual degrees of freedom:
		// more is a record that contradicts itself.
		v.add("degrees-of-freedom", Refuse, "residual degrees of freedom over the rows less the coefficients")
	}
	if len(m.Coefficients) == 0 {
		v.add("format", Review, "a model without coefficients")
	}
	for i, c := range m.Coefficients {
		if c.Estimate == nil {
			v.add("unusual", Review, "coefficient %d has no estimate (missing or not a number)", i+1)
		}
	}
}

// Publishable returns what leaves the node of a released output: for the
// structured table and stats formats, the output without each cell's
// largest contributions and total ("top", "total"), which are single
// units' values kept only for the node's own checks; every other output
// as it is. Numbers are kept digit for digit.
func Publishable(data []byte) []byte {
	kind, _ := kindOf(data)
	if kind != FormatTable && kind != FormatStats {
		return data
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var obj map[string]any
	if d.Decode(&obj) != nil {
		return data
	}
	list := "cells"
	if kind == FormatStats {
		list = "statistics"
	}
	items, _ := obj[list].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			delete(m, "top")
			delete(m, "total")
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(obj) != nil {
		return data
	}
	return buf.Bytes()
}

// plainMembers reads one JSON value and refuses objects whose member
// names are not plain lower-case ASCII (a-z, 0-9, _) or appear twice.
func plainMembers(d *json.Decoder) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			for i := 0; i < len(k); i++ {
				if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
					return fmt.Errorf("member names must be lower-case ASCII")
				}
			}
			if seen[k] {
				return fmt.Errorf("a member named twice")
			}
			seen[k] = true
			if err := plainMembers(d); err != nil {
				return err
			}
		}
		_, err = d.Token()
		return err
	case json.Delim('['):
		for d.More() {
			if err := plainMembers(d); err != nil {
				return err
			}
		}
		_, err = d.Token()
		return err
	}
	return nil
}

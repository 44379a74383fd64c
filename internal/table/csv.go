package table

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Inference thresholds: a column whose values are not all numbers or
// dates is categorical when it has at most maxInferredLevels distinct
// values and at most half as many as the table has rows; else it is
// text.
const maxInferredLevels = 50

// Defaults of Limits.
const (
	DefaultMaxBytes   = 1 << 30
	DefaultMaxRows    = 50_000_000
	DefaultMaxColumns = 1000
	DefaultMaxLevels  = 1000
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	// A column's cells are addressed with 32-bit offsets.
	l.MaxBytes = min(l.MaxBytes, math.MaxUint32)
	if l.MaxRows <= 0 {
		l.MaxRows = DefaultMaxRows
	}
	if l.MaxColumns <= 0 {
		l.MaxColumns = DefaultMaxColumns
	}
	if l.MaxLevels <= 0 {
		l.MaxLevels = DefaultMaxLevels
	}
	return l
}

// ValidType reports whether t is one of the column types.
func ValidType(t Type) bool {
	switch t {
	case Numeric, Integer, Categorical, Date, Text:
		return true
	}
	return false
}

// Check reports what is wrong with a dictionary on its own (a type that
// is not one of the five, an empty column name).
func (d *Dictionary) Check() error {
	if d == nil {
		return nil
	}
	for name, t := range d.Columns {
		if name == "" {
			return errors.New("table: dictionary: a column with an empty name")
		}
		if !ValidType(t) {
			return fmt.Errorf("table: dictionary: column %q: unknown type %q (use numeric, integer, categorical, date or text)", name, t)
		}
	}
	return nil
}

// errTooLarge is returned by limitedReader past its limit.
var errTooLarge = errors.New("table: input too large")

type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// chunkSize is the size of the blocks a column's cells are kept in while
// the input is read: appending to blocks of a fixed size copies nothing,
// where one growing buffer would be copied several times over.
const chunkSize = 1 << 20

// rawColumn holds one column's cells as read: their bytes one after the
// other in chunks, the cells from first[k] on in chunk k, cell i ending
// at ends[i] in its chunk. A rawColumn is not copied once used.
type rawColumn struct {
	sb     strings.Builder
	chunks []string
	first  []int
	ends   []uint32
	open   bool // a chunk is being filled in sb
}

func (r *rawColumn) add(f string) {
	if r.open && r.sb.Len() > 0 && r.sb.Len()+len(f) > chunkSize {
		r.chunks = append(r.chunks, r.sb.String())
		r.sb = strings.Builder{}
		r.open = false
	}
	if !r.open {
		r.sb.Grow(max(chunkSize, len(f)))
		r.first = append(r.first, len(r.ends))
		r.open = true
	}
	r.sb.WriteString(f)
	r.ends = append(r.ends, uint32(r.sb.Len()))
}

// ReadCSV reads a CSV table (a header line, then rows). Types come from
// dict where it names a column, else they are inferred from the values:
// integer when every value present is a whole number, numeric when a
// number, date when a date YYYY-MM-DD, categorical when the distinct
// values are few (at most 50, and at most half the rows), else text. An
// eight-digit value is taken as an integer unless the dictionary says
// the column holds dates (YYYYMMDD is read then). NA and empty cells are
// missing. Any bad row fails the whole read with a *RowError naming its
// line and column, never its values; nothing is returned half read.
func ReadCSV(r io.Reader, dict *Dictionary, lim Limits) (*Table, error) {
	lim = lim.withDefaults()
	if err := dict.Check(); err != nil {
		return nil, err
	}
	lr := &limitedReader{r: r, left: lim.MaxBytes}
	cr := csv.NewReader(lr)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, csvError(err, 1, lim)
	}
	if len(head) > lim.MaxColumns {
		return nil, &RowError{Line: 1, Msg: fmt.Sprintf("%d columns, more than the limit of %d", len(head), lim.MaxColumns)}
	}
	names := make([]string, len(head))
	seen := map[string]int{}
	for i, h := range head {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, &RowError{Line: 1, Column: "column " + itoa(i+1), Msg: "empty column name in the header"}
		}
		if !utf8.ValidString(h) {
			return nil, &RowError{Line: 1, Column: "column " + itoa(i+1), Msg: "column name not valid UTF-8"}
		}
		if j, dup := seen[h]; dup {
			return nil, &RowError{Line: 1, Column: h, Msg: "column named twice in the header (columns " + itoa(j+1) + " and " + itoa(i+1) + ")"}
		}
		seen[h] = i
		names[i] = h
	}
	if dict != nil {
		for name := range dict.Columns {
			if _, ok := seen[name]; !ok {
				return nil, &RowError{Line: 1, Column: name, Msg: "the dictionary names a column the header lacks"}
			}
		}
		if dict.Patient != "" {
			if _, ok := seen[dict.Patient]; !ok {
				return nil, &RowError{Line: 1, Column: dict.Patient, Msg: "the dictionary's patient column is not in the header"}
			}
		}
	}
	raw := make([]rawColumn, len(names))
	var lines []int32
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line := len(lines) + 2
		if err != nil {
			return nil, csvError(err, line, lim)
		}
		if l, _ := cr.FieldPos(0); l > 0 {
			line = l
		}
		if len(lines) >= lim.MaxRows {
			return nil, &RowError{Line: line, Msg: fmt.Sprintf("more than the limit of %d rows", lim.MaxRows)}
		}
		lines = append(lines, int32(min(line, math.MaxInt32)))
		for i, f := range rec {
			raw[i].add(trimSpace(f))
		}
	}
	t := &Table{rows: len(lines), cols: make([]col, len(names)), lines: lines}
	t.Schema.Columns = make([]Column, len(names))
	if dict != nil {
		t.Schema.Patient = dict.Patient
	}
	for i, name := range names {
		want := Type("")
		if dict != nil {
			want = dict.Columns[name]
		}
		cells := cellsOf(&raw[i])
		raw[i].chunks, raw[i].first, raw[i].ends = nil, nil, nil
		c, column, err := buildColumn(name, want, name == t.Schema.Patient, cells, lines, lim)
		if err != nil {
			return nil, err
		}
		t.cols[i] = c
		t.Schema.Columns[i] = column
	}
	return t, nil
}

// cellList reads a column's cells; at is fastest in row order.
type cellList struct {
	chunks []string
	first  []int
	ends   []uint32
	k      int // the chunk of the last cell asked for
}

func (c *cellList) at(i int) string {
	if i < c.first[c.k] {
		c.k = 0
	}
	for c.k+1 < len(c.first) && c.first[c.k+1] <= i {
		c.k++
	}
	start := uint32(0)
	if i > c.first[c.k] {
		start = c.ends[i-1]
	}
	return c.chunks[c.k][start:c.ends[i]]
}

// cellsOf ends a column's reading and gives its cells.
func cellsOf(r *rawColumn) *cellList {
	if r.open {
		r.chunks = append(r.chunks, r.sb.String())
		r.sb = strings.Builder{}
		r.open = false
	}
	if len(r.first) == 0 {
		r.first = []int{0}
		r.chunks = []string{""}
	}
	return &cellList{chunks: r.chunks, first: r.first, ends: r.ends}
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func missing(s string) bool { return s == "" || s == "NA" }

// csvError turns an error of the CSV reader into a RowError.
func csvError(err error, line int, lim Limits) error {
	if errors.Is(err, errTooLarge) {
		return &RowError{Line: line, Msg: fmt.Sprintf("the input is larger than the limit of %d bytes", lim.MaxBytes)}
	}
	if err == io.EOF {
		return &RowError{Line: 1, Msg: "no header line: the input is empty"}
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, errTooLarge) {
			return &RowError{Line: pe.Line, Msg: fmt.Sprintf("the input is larger than the limit of %d bytes", lim.MaxBytes)}
		}
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return &RowError{Line: pe.StartLine, Msg: "wrong number of fields (the header has a different number)"}
		}
		return &RowError{Line: pe.Line, Msg: "malformed CSV: " + pe.Err.Error()}
	}
	return fmt.Errorf("table: reading line %d: %w", line, err)
}

// buildColumn types and converts one column's cells.
func buildColumn(name string, want Type, patient bool, cells *cellList, lines []int32, lim Limits) (col, Column, error) {
	n := len(cells.ends)
	bad := func(i int, msg string) error {
		return &RowError{Line: int(lines[i]), Column: name, Msg: msg}
	}
	if patient {
		if want != "" && want != Text {
			return col{}, Column{}, &RowError{Line: 1, Column: name, Msg: "the patient column must be of type text"}
		}
		return col{Str: stringsOf(cells)}, Column{Name: name, Type: Text}, nil
	}
	switch want {
	case Text:
		return col{Str: stringsOf(cells)}, Column{Name: name, Type: Text}, nil
	case Numeric, Integer:
		f, i, err := floatsOf(cells, want == Integer)
		if err != nil {
			msg := "not a number"
			if want == Integer {
				msg = "not a whole number (integer column)"
			}
			return col{}, Column{}, bad(i, msg)
		}
		return col{Float: f}, Column{Name: name, Type: want}, nil
	case Date:
		f, i, err := datesOf(cells, true)
		if err != nil {
			return col{}, Column{}, bad(i, "not a date YYYY-MM-DD or YYYYMMDD")
		}
		return col{Float: f}, Column{Name: name, Type: Date}, nil
	case Categorical:
		codes, levels, i := codesOf(cells, lim.MaxLevels)
		if i >= 0 {
			msg := fmt.Sprintf("more than the limit of %d levels", lim.MaxLevels)
			if s := cells.at(i); !utf8.ValidString(s) {
				msg = "a categorical value not valid UTF-8"
			}
			return col{}, Column{}, bad(i, msg)
		}
		return col{Code: codes}, Column{Name: name, Type: Categorical, Levels: levels}, nil
	}
	// Inferred.
	present := 0
	for i := 0; i < n; i++ {
		if !missing(cells.at(i)) {
			present++
		}
	}
	if present == 0 {
		return col{Str: stringsOf(cells)}, Column{Name: name, Type: Text}, nil
	}
	if f, whole, ok := numbersOf(cells); ok {
		if whole {
			return col{Float: f}, Column{Name: name, Type: Integer}, nil
		}
		return col{Float: f}, Column{Name: name, Type: Numeric}, nil
	}
	if f, _, err := datesOf(cells, false); err == nil {
		return col{Float: f}, Column{Name: name, Type: Date}, nil
	}
	if limit := min(maxInferredLevels, n/2); limit > 0 {
		if codes, levels, i := codesOf(cells, limit); i < 0 {
			return col{Code: codes}, Column{Name: name, Type: Categorical, Levels: levels}, nil
		}
	}
	return col{Str: stringsOf(cells)}, Column{Name: name, Type: Text}, nil
}

func stringsOf(cells *cellList) []string {
	out := make([]string, len(cells.ends))
	for i := range out {
		if s := cells.at(i); !missing(s) {
			out[i] = s
		}
	}
	return out
}

var errValue = errors.New("bad value")

// maxExact is the largest whole number a float64 holds exactly.
const maxExact = 1 << 53

// floatsOf parses a column as numbers (whole numbers only when integer),
// NaN for missing; on failure it gives the row.
func floatsOf(cells *cellList, integer bool) ([]float64, int, error) {
	out := make([]float64, len(cells.ends))
	for i := range out {
		s := cells.at(i)
		if missing(s) {
			out[i] = math.NaN()
			continue
		}
		if v, ok := parseInt(s); ok {
			out[i] = float64(v)
			continue
		}
		if integer {
			return nil, i, errValue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || !numberLike(s) {
			return nil, i, errValue
		}
		out[i] = v
	}
	return out, 0, nil
}

// numbersOf parses a column as numbers in one pass, saying whether all
// were whole; ok is false at the first value that is not a number.
func numbersOf(cells *cellList) (out []float64, whole, ok bool) {
	whole = true
	for i := range cells.ends {
		s := cells.at(i)
		if missing(s) {
			continue
		}
		if _, isInt := parseInt(s); isInt {
			continue
		}
		whole = false
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || !numberLike(s) {
			return nil, false, false
		}
	}
	out, _, err := floatsOf(cells, whole)
	return out, whole, err == nil
}

// numberLike refuses what ParseFloat takes but a table should not: hex
// floats, underscores, "Inf" and "NaN" spelled out.
func numberLike(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return false
		}
	}
	return true
}

// parseInt parses a decimal whole number of at most 2^53 in magnitude.
func parseInt(s string) (int64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if v > maxExact {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func datesOf(cells *cellList, compact bool) ([]float64, int, error) {
	out := make([]float64, len(cells.ends))
	for i := range out {
		s := cells.at(i)
		if missing(s) {
			out[i] = math.NaN()
			continue
		}
		d, ok := ParseDate(s, compact)
		if !ok {
			return nil, i, errValue
		}
		out[i] = float64(d)
	}
	return out, 0, nil
}

// ParseDate reads a date YYYY-MM-DD (and YYYYMMDD when compact) as days
// since 1970-01-01.
func ParseDate(s string, compact bool) (int64, bool) {
	var y, m, d int
	digits := func(s string) (int, bool) {
		v := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			v = v*10 + int(s[i]-'0')
		}
		return v, true
	}
	var ok1, ok2, ok3 bool
	switch {
	case len(s) == 10 && s[4] == '-' && s[7] == '-':
		y, ok1 = digits(s[0:4])
		m, ok2 = digits(s[5:7])
		d, ok3 = digits(s[8:10])
	case compact && len(s) == 8:
		y, ok1 = digits(s[0:4])
		m, ok2 = digits(s[4:6])
		d, ok3 = digits(s[6:8])
	default:
		return 0, false
	}
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil counts the days from 1970-01-01 to y-m-d (proleptic
// Gregorian calendar).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// FormatDate writes days since 1970-01-01 as YYYY-MM-DD.
func FormatDate(days int64) string {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}

// codesOf codes a column against its sorted distinct values; past limit
// distinct values, or at a value not valid UTF-8 (levels travel in the
// JSON schema), it gives up and returns the row (else -1).
func codesOf(cells *cellList, limit int) ([]int32, []string, int) {
	idx := map[string]int32{}
	var levels []string
	first := make([]int32, len(cells.ends))
	for i := range first {
		s := cells.at(i)
		if missing(s) {
			first[i] = -1
			continue
		}
		c, ok := idx[s]
		if !ok {
			if len(levels) >= limit || !utf8.ValidString(s) {
				return nil, nil, i
			}
			c = int32(len(levels))
			idx[s] = c
			levels = append(levels, s)
		}
		first[i] = c
	}
	sorted := slices.Clone(levels)
	slices.Sort(sorted)
	remap := make([]int32, len(levels))
	for i, l := range sorted {
		remap[idx[l]] = int32(i)
	}
	for i, c := range first {
		if c >= 0 {
			first[i] = remap[c]
		}
	}
	if sorted == nil {
		sorted = []string{}
	}
	return first, sorted, -1
}

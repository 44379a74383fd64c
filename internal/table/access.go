package table

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Rows is the number of rows.
func (t *Table) Rows() int { return t.rows }

// column finds a column by name.
func (t *Table) column(name string) (int, *Column, error) {
	for i := range t.Schema.Columns {
		if t.Schema.Columns[i].Name == name {
			return i, &t.Schema.Columns[i], nil
		}
	}
	return -1, nil, fmt.Errorf("%w: no column %q", ErrColumn, name)
}

// Float returns a numeric, integer or date column (NaN for missing).
// The slice is the table's own: do not change it.
func (t *Table) Float(name string) ([]float64, error) {
	i, c, err := t.column(name)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case Numeric, Integer, Date:
		if name != t.Schema.Patient {
			return t.cols[i].Float, nil
		}
	}
	return nil, fmt.Errorf("%w: column %q is %s, not numeric, integer or date", ErrColumn, name, c.Type)
}

// Codes returns a categorical column's codes (-1 for missing) and
// levels. The slices are the table's own: do not change them.
func (t *Table) Codes(name string) ([]int32, []string, error) {
	i, c, err := t.column(name)
	if err != nil {
		return nil, nil, err
	}
	if c.Type != Categorical {
		return nil, nil, fmt.Errorf("%w: column %q is %s, not categorical", ErrColumn, name, c.Type)
	}
	return t.cols[i].Code, c.Levels, nil
}

// Strings returns a text column, or the patient column ("" for
// missing).
func (t *Table) Strings(name string) ([]string, error) {
	i, c, err := t.column(name)
	if err != nil {
		return nil, err
	}
	if c.Type != Text {
		return nil, fmt.Errorf("%w: column %q is %s, not text", ErrColumn, name, c.Type)
	}
	return t.cols[i].Str, nil
}

// Line is the CSV line row started on (1 being the header) for a table
// ReadCSV read; for others, row+2.
func (t *Table) Line(row int) int {
	if row >= 0 && row < len(t.lines) {
		return int(t.lines[row])
	}
	return row + 2
}

// Patients returns the patient column (nil when the table has none).
// The slice is the table's own: a node links the column to its
// pseudonyms by changing it in place before the table is stored.
func (t *Table) Patients() []string {
	if t == nil || t.Schema.Patient == "" {
		return nil
	}
	s, err := t.Strings(t.Schema.Patient)
	if err != nil {
		return nil
	}
	return s
}

// Select returns a table of the rows given (indices, in order; an index
// out of range is left out). The schema, levels included, is the same.
func (t *Table) Select(rows []int) *Table {
	keep := make([]int, 0, len(rows))
	for _, r := range rows {
		if r >= 0 && r < t.rows {
			keep = append(keep, r)
		}
	}
	out := &Table{Schema: t.Schema.clone(), rows: len(keep), cols: make([]col, len(t.cols))}
	for j, c := range t.cols {
		switch {
		case c.Float != nil:
			f := make([]float64, len(keep))
			for k, r := range keep {
				f[k] = c.Float[r]
			}
			out.cols[j].Float = f
		case c.Code != nil:
			f := make([]int32, len(keep))
			for k, r := range keep {
				f[k] = c.Code[r]
			}
			out.cols[j].Code = f
		default:
			f := make([]string, len(keep))
			for k, r := range keep {
				f[k] = c.Str[r]
			}
			out.cols[j].Str = f
		}
	}
	return out
}

func (s Schema) clone() Schema {
	out := Schema{Patient: s.Patient, Columns: make([]Column, len(s.Columns))}
	copy(out.Columns, s.Columns)
	return out
}

// WriteCSV writes the table as CSV (missing values as NA), for programs
// that read a snapshot's tables in a sandbox. Dates are written
// YYYY-MM-DD, numbers in their shortest exact form.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(t.Schema.Columns))
	for i, c := range t.Schema.Columns {
		rec[i] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for r := 0; r < t.rows; r++ {
		for j, c := range t.Schema.Columns {
			rec[j] = t.cell(j, c, r)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (t *Table) cell(j int, c Column, r int) string {
	d := t.cols[j]
	switch {
	case d.Float != nil:
		v := d.Float[r]
		if math.IsNaN(v) {
			return "NA"
		}
		if c.Type == Date {
			return FormatDate(int64(v))
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case d.Code != nil:
		if d.Code[r] < 0 {
			return "NA"
		}
		return c.Levels[d.Code[r]]
	default:
		if d.Str[r] == "" {
			return "NA"
		}
		return d.Str[r]
	}
}

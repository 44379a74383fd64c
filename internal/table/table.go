// Package table holds the research tables a node keeps for a dataset
// beside its fixed clinical layout: any CSV read with column types
// inferred or given by a small data dictionary (numeric, integer,
// categorical, date, text), NA and empty cells as missing, an optional
// patient column linked to the dataset's pseudonyms, errors that name
// the line, and a compact columnar encoding the node stores as a blob.
package table

import (
	"errors"
)

// Type is a column's type.
type Type string

// Column types.
const (
	Numeric     Type = "numeric"     // float64
	Integer     Type = "integer"     // whole numbers, held as float64
	Categorical Type = "categorical" // codes into Levels
	Date        Type = "date"        // days since 1970-01-01, held as float64
	Text        Type = "text"        // free text: never modelled
)

// Column describes one column.
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
	// Levels are a categorical column's values, sorted; the data holds
	// indices into them. Levels are values: they never reach the
	// catalogue.
	Levels []string `json:"levels,omitempty"`
}

// Schema describes a table.
type Schema struct {
	Columns []Column `json:"columns"`
	// Patient names the column that holds patient pseudonyms ("" when
	// the table belongs to the dataset as a whole).
	Patient string `json:"patient,omitempty"`
}

// Dictionary overrides inferred types and names the patient column. It
// is read from JSON: {"patient": "patient_id", "columns": {"age":
// "integer", "stage": "categorical"}}.
type Dictionary struct {
	Patient string          `json:"patient,omitempty"`
	Columns map[string]Type `json:"columns,omitempty"`
}

// Table is a table in memory, by column.
type Table struct {
	Schema Schema
	rows   int
	cols   []col
	// lines are the CSV lines the rows started on (ReadCSV's tables
	// only).
	lines []int32
}

// col holds one column's data: Float for numeric, integer and date (NaN
// missing), Code for categorical (-1 missing), Str for text and the
// patient column ("" missing).
type col struct {
	Float []float64
	Code  []int32
	Str   []string
}

// ErrNotImplemented marks the contract's stubs.
var ErrNotImplemented = errors.New("table: not implemented")

// ErrColumn is wrapped by the errors of the accessors: no column of that
// name, or one of another type.
var ErrColumn = errors.New("table: column")

// RowError is an error in one line of a CSV input (1-based, the header
// being line 1).
type RowError struct {
	Line   int
	Column string
	Msg    string
}

func (e *RowError) Error() string {
	return "table: line " + itoa(e.Line) + ": " + e.Column + ": " + e.Msg
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Limits bound what ReadCSV takes.
type Limits struct {
	MaxBytes   int64 // default 1 GiB
	MaxRows    int   // default 50 million
	MaxColumns int   // default 1000
	MaxLevels  int   // categorical levels per column, default 1000
}

// Info is what a node lists of a stored table.
type Info struct {
	Dataset string `json:"dataset"`
	Name    string `json:"name"`
	Schema  Schema `json:"schema"`
	Rows    int    `json:"rows"`
	// Digest is the SHA-256 (hex) of the encoded table.
	Digest string `json:"digest"`
}

// ValidName reports whether name can name a table: 1 to 64 letters,
// digits, dashes and underscores, starting with a letter.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

package deid

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// Issuers maps each Patient ID of original images to the issuers of
// patient ID seen with it.
type Issuers map[string][]string

// Add records that id was seen with issuer (both trimmed); an empty ID
// is ignored.
func (is Issuers) Add(id, issuer string) {
	id = strings.TrimSpace(id)
	if id == "" {
		return
	}
	issuer = strings.TrimSpace(issuer)
	if !slices.Contains(is[id], issuer) {
		is[id] = append(is[id], issuer)
	}
}

// Read reads the header of one original DICOM object (up to its pixel
// data) and records its Patient ID and issuer. maxInflated bounds a
// deflated dataset held in memory.
func (is Issuers) Read(r io.Reader, maxInflated int64) error {
	df, err := dicom.NewDecoder(r, dicom.ReadOptions{StopAtPixelData: true, MaxInflated: maxInflated}).ReadFile()
	if err != nil {
		return err
	}
	id, _ := df.Dataset.String(dicom.NewTag(0x0010, 0x0020))
	issuer, _ := df.Dataset.String(dicom.NewTag(0x0010, 0x0021))
	is.Add(id, issuer)
	return nil
}

// TableOptions say how a clinical table is de-identified.
type TableOptions struct {
	// IDColumn holds the Patient ID (required); it becomes the pseudonym
	// the images get.
	IDColumn string
	// IssuerColumn holds the Issuer of Patient ID; it is left out of the
	// output.
	IssuerColumn string
	// Issuer is the issuer of every row, or of the rows Issuers does not
	// know.
	Issuer string
	// Issuers gives each Patient ID its issuer from the original images
	// (not with IssuerColumn).
	Issuers Issuers
	// DateColumns are changed as the policy changes the patient's image
	// dates; DropColumns are left out.
	DateColumns []string
	DropColumns []string
}

// ErrTableColumns is wrapped by the errors about the options and the
// table's columns (a column missing or named twice, the ID column among
// the dates): the caller's mistake rather than a bad row.
var ErrTableColumns = errors.New("clinical table columns")

// TableReport is the outcome of DeidentifyTable. Problems name rows
// (lines of the input) and columns, never a value.
type TableReport struct {
	Rows    int `json:"rows"`
	Written int `json:"written"`
	// Patients counts the distinct patients of the rows written.
	Patients int `json:"patients"`
	// LeftOut lists the rows left out (no ID, several issuers).
	LeftOut []string `json:"left_out"`
	// BadDates counts values of date columns that were not dates (emptied).
	BadDates int `json:"bad_dates"`
	// NotFound counts rows whose ID the Issuers did not know.
	NotFound int `json:"issuer_not_found,omitempty"`
	// Dropped names the columns left out, Dates the date columns and
	// Copied counts the columns copied unchanged.
	Dropped []string `json:"dropped_columns"`
	Dates   []string `json:"date_columns"`
	Copied  int      `json:"copied_columns"`
	// IssuerColumnFound names the issuer column taken without being
	// asked for: the table has StandardIssuerColumn and no other source
	// of issuers was given.
	IssuerColumnFound string `json:"issuer_column_found,omitempty"`
	// Sealed counts the rows this site key's 'mosaic deid clinical'
	// wrote (their seal verified): their pseudonyms are kept. Unsealed
	// counts the rows whose ID looks like a pseudonym, or that carry a
	// mark of this key, without a valid seal: taken as original data.
	Sealed   int `json:"sealed_rows,omitempty"`
	Unsealed int `json:"unsealed_pseudonym_rows,omitempty"`
	// DateLikeCopied names the columns copied unchanged whose names say
	// they hold dates (see dateLikeName): most likely a date column the
	// options forgot, worth a warning.
	DateLikeCopied []string `json:"date_like_copied,omitempty"`
}

// StandardIssuerColumn is the issuer column of Mosaic's clinical table
// format (docs/clinical-csv.md). A table that has it uses it for the
// issuers unless the options give another source.
const StandardIssuerColumn = "issuer_of_patient_id"

// dateLikeName reports whether a column name says it holds dates:
// "date", or a name starting or ending with a date word.
func dateLikeName(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, w := range []string{"date", "dob", "birth"} {
		if n == w || strings.HasPrefix(n, w+"_") || strings.HasSuffix(n, "_"+w) {
			return true
		}
	}
	return strings.HasSuffix(n, "_dt") || strings.Contains(n, "date_of_")
}

func columnErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrTableColumns, fmt.Sprintf(format, a...))
}

// DeidentifyTable reads a clinical table (CSV with a header row) from r
// and writes it to w with each row's patient ID replaced by the
// pseudonym the images get, date columns changed per the policy for that
// patient (a value that is not a date is emptied), the drop columns and
// the issuer column left out, and the other columns copied. Each row gets
// the keyed mark of rowmark.go in the last column, ClinicalMarkColumn; a
// mark in the input is replaced. A row of a table this key marked keeps
// its pseudonym (see ClinicalRow); a table marked with another key is
// refused.
func (e *Engine) DeidentifyTable(w io.Writer, r io.Reader, opts TableOptions) (TableReport, error) {
	rep := TableReport{LeftOut: []string{}, Dropped: []string{}, Dates: []string{}}
	cr := csv.NewReader(bufio.NewReader(r))
	cr.ReuseRecord = false
	l, err := readLayout(cr, opts, &rep)
	if err != nil {
		return rep, err
	}
	header, idCol, issuerCol, dateCol, drop := l.header, l.idCol, l.issuerCol, l.dateCol, l.drop

	cw := csv.NewWriter(w)
	keep := func(rec []string) []string {
		out := make([]string, 0, len(rec))
		for i, v := range rec {
			if !drop[i] {
				out = append(out, v)
			}
		}
		return out
	}
	outHeader := keep(header)
	if err := cw.Write(append(slices.Clone(outHeader), ClinicalMarkColumn)); err != nil {
		return rep, err
	}
	patients := map[string]struct{}{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// csv errors name the line and column, not the value.
			return rep, err
		}
		rep.Rows++
		line, _ := cr.FieldPos(0)
		id := strings.TrimSpace(rec[idCol])
		if id == "" {
			rep.LeftOut = append(rep.LeftOut, fmt.Sprintf("line %d: empty %s; row left out", line, opts.IDColumn))
			continue
		}
		issuer := opts.Issuer
		switch {
		case issuerCol >= 0:
			issuer = rec[issuerCol]
		case opts.Issuers != nil:
			switch found := opts.Issuers[id]; len(found) {
			case 0:
				rep.NotFound++
			case 1:
				issuer = found[0]
			default:
				rep.LeftOut = append(rep.LeftOut, fmt.Sprintf("line %d: the images give this %s %d different issuers; row left out (use --issuer-column)", line, opts.IDColumn, len(found)))
				continue
			}
		}
		row, err := e.ClinicalRow(header, rec, l.markCol, id, issuer)
		if err != nil {
			return rep, fmt.Errorf("line %d: %w", line, err)
		}
		switch {
		case row.Own:
			rep.Sealed++
		case row.Unsealed:
			rep.Unsealed++
		}
		rec[idCol] = row.Pseudonym()
		patients[rec[idCol]] = struct{}{}
		for i := range dateCol {
			v, err := row.ChangeDate(rec[i])
			if err != nil {
				v = ""
				rep.BadDates++
			}
			rec[i] = v
		}
		out := keep(rec)
		if err := cw.Write(append(out, e.rowMark(outHeader, out))); err != nil {
			return rep, err
		}
		rep.Written++
	}
	cw.Flush()
	rep.Patients = len(patients)
	return rep, cw.Error()
}

// DeidentifyTableFile de-identifies the table in the file in into the file
// out (DeidentifyTable), written to a temporary file next to out, synced,
// made readable by its owner only and renamed over out. On any error out
// is left as it was.
func (e *Engine) DeidentifyTableFile(out, in string, opts TableOptions) (TableReport, error) {
	src, err := os.Open(in)
	if err != nil {
		return TableReport{}, err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), ".deid-clinical-*.tmp")
	if err != nil {
		return TableReport{}, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(tmp)
	rep, err := e.DeidentifyTable(bw, src, opts)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", in, err)
	}
	if err := bw.Flush(); err != nil {
		return rep, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		return rep, err
	}
	if err := tmp.Sync(); err != nil {
		return rep, err
	}
	if err := tmp.Close(); err != nil {
		return rep, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return rep, err
	}
	done = true
	return rep, nil
}

// layout is where the options' columns are in a table.
type layout struct {
	header           []string
	idCol, issuerCol int
	markCol          int // ClinicalMarkColumn, or -1
	dateCol, drop    map[int]bool
}

// readLayout reads the header row and finds the options' columns.
func readLayout(cr *csv.Reader, opts TableOptions, rep *TableReport) (layout, error) {
	var l layout
	if opts.IDColumn == "" {
		return l, columnErr("no ID column named")
	}
	if opts.IssuerColumn != "" && opts.Issuers != nil {
		return l, columnErr("an issuer column and issuers from images both given")
	}
	header, err := cr.Read()
	if err != nil {
		return l, fmt.Errorf("header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	col := map[string]int{}
	for i, h := range header {
		if _, dup := col[h]; dup {
			return l, columnErr("column %q appears twice", h)
		}
		col[h] = i
	}
	need := func(what, name string) (int, error) {
		i, ok := col[name]
		if !ok {
			return 0, columnErr("no column %q (%s); columns: %s", name, what, strings.Join(header, ", "))
		}
		return i, nil
	}
	idCol, err := need("ID column", opts.IDColumn)
	if err != nil {
		return l, err
	}
	issuerCol := -1
	if opts.IssuerColumn != "" {
		if issuerCol, err = need("issuer column", opts.IssuerColumn); err != nil {
			return l, err
		}
	} else if i, ok := col[StandardIssuerColumn]; ok && opts.Issuer == "" && opts.Issuers == nil && i != idCol {
		issuerCol = i
		rep.IssuerColumnFound = StandardIssuerColumn
	}
	dateCol := map[int]bool{}
	for _, c := range opts.DateColumns {
		i, err := need("date columns", c)
		if err != nil {
			return l, err
		}
		if i == idCol {
			return l, columnErr("the date columns name the ID column %q", c)
		}
		dateCol[i] = true
	}
	drop := map[int]bool{}
	for _, c := range opts.DropColumns {
		i, err := need("drop columns", c)
		if err != nil {
			return l, err
		}
		if i == idCol {
			return l, columnErr("the drop columns name the ID column %q", c)
		}
		drop[i] = true
	}
	if issuerCol >= 0 {
		drop[issuerCol] = true
	}
	markCol := MarkColumn(header)
	if markCol >= 0 {
		if markCol == idCol || dateCol[markCol] {
			return l, columnErr("the ID or date columns name the mark column %q", ClinicalMarkColumn)
		}
		drop[markCol] = true // replaced by a new mark
	}
	for i, h := range header {
		switch {
		case i == markCol:
		case drop[i]:
			rep.Dropped = append(rep.Dropped, h)
		case dateCol[i]:
			rep.Dates = append(rep.Dates, h)
		case i != idCol:
			rep.Copied++
			if dateLikeName(h) {
				rep.DateLikeCopied = append(rep.DateLikeCopied, h)
			}
		}
	}

	l = layout{header: header, idCol: idCol, issuerCol: issuerCol, markCol: markCol, dateCol: dateCol, drop: drop}
	return l, nil
}

// CheckTable reads the header row of the table in the file in and checks
// that it has the options' columns, before any key is opened.
func CheckTable(in string, opts TableOptions) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = readLayout(csv.NewReader(bufio.NewReader(f)), opts, &TableReport{})
	return err
}

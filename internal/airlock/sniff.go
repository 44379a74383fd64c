package airlock

import (
	"bytes"
	"encoding/csv"
	"image/png"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// checkContent sniffs what an output is from its bytes (never its name
// alone) and runs the checks of that type.
func checkContent(v *Verdict, pol Policy, perm Permissions, out Output) {
	data := out.Data
	if isDICOM(data) {
		v.Type = "dicom"
		if !perm.DICOM {
			v.add("dicom", Refuse, "a DICOM file; the permit does not allow DICOM output")
			return
		}
		v.add("dicom", Review, "a DICOM file the permit allows; a person checks it")
		return
	}
	if bytes.HasPrefix(data, pngMagic) {
		v.Type = "png"
		if _, err := png.DecodeConfig(bytes.NewReader(data)); err != nil {
			v.add("type", Refuse, "a damaged PNG image")
			return
		}
		if why := pngHidden(data); why != "" {
			v.add("type", Refuse, "a PNG image with %s, which a person looking at it does not see", why)
			return
		}
		v.add("unstructured", Review, "an image: a person looks at it before it leaves")
		return
	}
	if !isText(data) {
		v.Type = "binary"
		v.add("type", Refuse, "binary content of an unknown type; allowed are the structured JSON outputs, UTF-8 text, CSV and PNG")
		return
	}
	if kind, isObject := kindOf(data); kind != "" {
		v.Type = kind
		checkStructured(v, pol, perm, out, kind)
		return
	} else if isObject {
		v.Type = "text"
		checkText(v, perm, out)
		return
	}
	if rows, ok := parseCSV(data, out.Name); ok {
		v.Type = "csv"
		checkCSV(v, pol, perm, out, rows)
		return
	}
	v.Type = "text"
	checkText(v, perm, out)
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// pngChunks are the chunks an image may hold and still leave: those that
// make its pixels and colours, none that carries text or other bytes.
var pngChunks = map[string]bool{"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true, "tRNS": true,
	"gAMA": true, "cHRM": true, "sRGB": true, "pHYs": true, "bKGD": true, "sBIT": true}

// pngHidden walks a PNG's chunks and says what it carries besides the
// image: bytes after its end, or a chunk of another kind.
func pngHidden(data []byte) string {
	p := data[len(pngMagic):]
	for len(p) >= 12 {
		n := uint64(p[0])<<24 | uint64(p[1])<<16 | uint64(p[2])<<8 | uint64(p[3])
		typ := string(p[4:8])
		if n > uint64(len(p)-12) {
			return "a chunk past its end"
		}
		if !pngChunks[typ] {
			return "a chunk of text or other data"
		}
		p = p[12+n:]
		if typ == "IEND" {
			if len(p) > 0 {
				return "data after its end"
			}
			return ""
		}
	}
	return "no proper end"
}

// isDICOM reports whether data is a DICOM file (the "DICM" prefix after a
// 128-byte preamble) or a bare data set that parses as one.
func isDICOM(data []byte) bool {
	if len(data) >= 132 && string(data[128:132]) == "DICM" {
		return true
	}
	if len(data) < 16 || isText(data[:min(len(data), 512)]) {
		return false
	}
	// A bare data set starts with an element of a low, even group
	// (usually 0008) in either byte order.
	g := uint16(data[0]) | uint16(data[1])<<8
	if g == 0 || g > 0x0010 || g%2 != 0 {
		return false
	}
	f, err := dicom.Parse(data, dicom.ReadOptions{MaxValueLength: 64 << 20, MaxDepth: 16, MaxInflated: 1 << 20})
	return err == nil && f.Dataset.Len() >= 2
}

// isText reports whether data is UTF-8 text: valid, and without control
// characters other than tab, newline, carriage return and form feed.
func isText(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	for _, b := range data {
		if b < 0x20 && b != '\t' && b != '\n' && b != '\r' && b != '\f' || b == 0x7f {
			return false
		}
	}
	return true
}

// checkText checks plain text: it may hold anything, so a person reads
// it; pseudonyms in it are refused unless the permit allows rows.
func checkText(v *Verdict, perm Permissions, out Output) {
	if !perm.RowLevel && out.IsPseudonym != nil {
		for _, tok := range tokens(string(out.Data)) {
			if out.IsPseudonym(tok) {
				v.add("row-level", Refuse, "the text names a patient pseudonym")
				return
			}
		}
	}
	if len(bytes.TrimSpace(out.Data)) == 0 {
		v.add("unstructured", Review, "an empty text file")
		return
	}
	v.add("unstructured", Review, "free text: a person reads it before it leaves (structured outputs are checked exactly)")
}

// parseCSV reads data as CSV: it is CSV when it has at least two columns
// on every row, the same number on each, and either the name ends in
// .csv or .tsv or it has at least two rows.
func parseCSV(data []byte, name string) ([][]string, bool) {
	lower := strings.ToLower(name)
	named := strings.HasSuffix(lower, ".csv") || strings.HasSuffix(lower, ".tsv")
	for _, sep := range []rune{',', ';', '\t'} {
		r := csv.NewReader(bytes.NewReader(data))
		r.Comma = sep
		r.FieldsPerRecord = 0
		r.ReuseRecord = false
		var rows [][]string
		ok := true
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				ok = false
				break
			}
			rows = append(rows, rec)
		}
		if !ok || len(rows) == 0 || len(rows[0]) < 2 {
			continue
		}
		if named || len(rows) >= 2 {
			return rows, true
		}
	}
	return nil, false
}

var (
	dateRE    = regexp.MustCompile(`^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}|\d{8})([T ][0-9:.]+Z?)?$`)
	countName = regexp.MustCompile(`^(?i)(n|count|counts|freq|frequency|patients|cases|number)$`)
)

// checkCSV checks a CSV file: row-level content is refused unless the
// permit allows it; count columns get the cell threshold; the rest is for
// a person.
func checkCSV(v *Verdict, pol Policy, perm Permissions, out Output, rows [][]string) {
	header, body := rows[0], rows[1:]
	if !perm.RowLevel {
		rowLevel := false
		if slices.Contains(out.InputRows, len(body)) && len(body) > 1 {
			v.add("row-level", Refuse, "the CSV has as many rows (%d) as an input: it looks like records", len(body))
			rowLevel = true
		}
		for j := range header {
			var dates, pseud, filled int
			for _, r := range body {
				s := strings.TrimSpace(r[j])
				if s == "" {
					continue
				}
				filled++
				if dateRE.MatchString(s) {
					dates++
				}
				if out.IsPseudonym != nil && out.IsPseudonym(s) {
					pseud++
				}
			}
			if pseud > 0 {
				v.add("row-level", Refuse, "column %d holds patient pseudonyms", j+1)
				rowLevel = true
			}
			if filled >= 2 && dates*2 >= filled {
				v.add("row-level", Refuse, "column %d holds dates: it looks like records", j+1)
				rowLevel = true
			}
		}
		if !rowLevel && out.IsPseudonym != nil {
			for _, h := range header {
				if out.IsPseudonym(strings.TrimSpace(h)) {
					v.add("row-level", Refuse, "a column is named with a patient pseudonym")
					break
				}
			}
		}
	}
	// Count columns: every cell gets the threshold; all ones means records.
	for j, h := range header {
		if !countName.MatchString(strings.TrimSpace(h)) {
			continue
		}
		ones, cells := 0, 0
		for i, r := range body {
			s := strings.TrimSpace(r[j])
			if s == "" || strings.EqualFold(s, "NA") {
				continue
			}
			n, err := strconv.ParseFloat(s, 64)
			if err != nil {
				v.add("unusual", Review, "count column %d has a value that is not a number (row %d)", j+1, i+2)
				continue
			}
			cells++
			if n == 1 {
				ones++
			}
			checkCell(v, pol, "row "+strconv.Itoa(i+2)+" column "+strconv.Itoa(j+1), "", Cell{Count: &n}, false)
		}
		if !perm.RowLevel && cells > 1 && ones == cells {
			v.add("row-level", Refuse, "count column %d is one on every row: it looks like records", j+1)
		}
	}
	v.add("unstructured", Review, "a CSV file: a person checks it (the structured table format is checked exactly)")
}

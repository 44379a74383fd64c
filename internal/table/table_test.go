package table

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func mustRead(t *testing.T, in string, dict *Dictionary) *Table {
	t.Helper()
	tb, err := ReadCSV(strings.NewReader(in), dict, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func types(tb *Table) map[string]Type {
	m := map[string]Type{}
	for _, c := range tb.Schema.Columns {
		m[c.Name] = c.Type
	}
	return m
}

// TestReadCSVInference checks each inferred type, NA and empty as
// missing, the BOM, CRLF and quoted fields.
func TestReadCSVInference(t *testing.T) {
	var b strings.Builder
	b.WriteString("\ufeffid,age,weight,visit,stage,note,empty\r\n")
	stages := []string{"I", "II", "III", "IV"}
	for i := 0; i < 40; i++ {
		age := fmt.Sprint(30 + i)
		if i == 3 {
			age = "NA"
		}
		weight := fmt.Sprintf("%.1f", 60+float64(i)/2)
		if i == 5 {
			weight = ""
		}
		fmt.Fprintf(&b, "P%03d,%s,%s,2024-01-%02d,%s,\"free, text %d\nline\",NA\r\n", i, age, weight, i%28+1, stages[i%4], i)
	}
	tb := mustRead(t, b.String(), nil)
	if tb.Rows() != 40 {
		t.Fatalf("rows %d", tb.Rows())
	}
	want := map[string]Type{"id": Text, "age": Integer, "weight": Numeric, "visit": Date, "stage": Categorical, "note": Text, "empty": Text}
	if got := types(tb); !maps(got, want) {
		t.Fatalf("types %v, want %v", got, want)
	}
	age, err := tb.Float("age")
	if err != nil || age[0] != 30 || !math.IsNaN(age[3]) {
		t.Fatalf("age %v %v", age[:4], err)
	}
	w, _ := tb.Float("weight")
	if !math.IsNaN(w[5]) || w[1] != 60.5 {
		t.Fatalf("weight %v", w[:6])
	}
	v, _ := tb.Float("visit")
	if d, _ := ParseDate("2024-01-01", false); v[0] != float64(d) || FormatDate(int64(v[0])) != "2024-01-01" {
		t.Fatalf("visit %v", v[0])
	}
	codes, levels, err := tb.Codes("stage")
	if err != nil || !slices.Equal(levels, stages) || codes[1] != 1 || codes[3] != 3 {
		t.Fatalf("stage %v %v %v", codes[:4], levels, err)
	}
	notes, _ := tb.Strings("note")
	if notes[2] != "free, text 2\nline" {
		t.Fatalf("note %q", notes[2])
	}
	if _, err := tb.Float("stage"); !errors.Is(err, ErrColumn) {
		t.Fatalf("Float of a categorical column: %v", err)
	}
	if _, err := tb.Strings("nope"); !errors.Is(err, ErrColumn) {
		t.Fatalf("Strings of no column: %v", err)
	}
	if tb.Patients() != nil {
		t.Fatal("patients without a patient column")
	}
	// Few rows: four distinct values of four rows is not categorical.
	small := mustRead(t, "a\nx\ny\nz\nw\n", nil)
	if small.Schema.Columns[0].Type != Text {
		t.Fatalf("4 distinct of 4 rows: %s", small.Schema.Columns[0].Type)
	}
	// Eight digits are integers unless declared dates.
	d8 := mustRead(t, "d\n20240131\n20231201\n", nil)
	if d8.Schema.Columns[0].Type != Integer {
		t.Fatalf("YYYYMMDD inferred %s", d8.Schema.Columns[0].Type)
	}
	d8 = mustRead(t, "d\n20240131\n20231201\n", &Dictionary{Columns: map[string]Type{"d": Date}})
	f, _ := d8.Float("d")
	if FormatDate(int64(f[0])) != "2024-01-31" {
		t.Fatalf("YYYYMMDD as date %v", f)
	}
	// Not numbers that ParseFloat takes.
	for _, s := range []string{"Inf", "NaN", "0x1p3", "1_000"} {
		tb := mustRead(t, "x\n1\n"+s+"\n", nil)
		if tb.Schema.Columns[0].Type == Numeric || tb.Schema.Columns[0].Type == Integer {
			t.Errorf("%s: inferred %s", s, tb.Schema.Columns[0].Type)
		}
	}
}

func maps(a, b map[string]Type) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestReadCSVDictionary checks overrides and the patient column.
func TestReadCSVDictionary(t *testing.T) {
	in := "pid,grade,score,code\nA,1,2,10\nB,2,3,20\nC,,4,10\nD,3,NA,30\n"
	d := &Dictionary{Patient: "pid", Columns: map[string]Type{"grade": Categorical, "score": Numeric, "code": Text}}
	tb := mustRead(t, in, d)
	want := map[string]Type{"pid": Text, "grade": Categorical, "score": Numeric, "code": Text}
	if got := types(tb); !maps(got, want) {
		t.Fatalf("types %v", got)
	}
	if p := tb.Patients(); !slices.Equal(p, []string{"A", "B", "C", "D"}) {
		t.Fatalf("patients %v", p)
	}
	codes, levels, _ := tb.Codes("grade")
	if !slices.Equal(levels, []string{"1", "2", "3"}) || codes[2] != -1 {
		t.Fatalf("grade %v %v", codes, levels)
	}
	if tb.Schema.Patient != "pid" {
		t.Fatal("patient column not in the schema")
	}
	if err := (&Dictionary{Columns: map[string]Type{"x": "float"}}).Check(); err == nil {
		t.Fatal("unknown type accepted")
	}
}

// TestReadCSVBadRows checks each bad-row case fails with its line and
// never quotes a value.
func TestReadCSVBadRows(t *testing.T) {
	secret := "SECRETVALUE"
	many := "a\n" + strings.Repeat("x\n", 10)
	tests := []struct {
		name string
		in   string
		dict *Dictionary
		lim  Limits
		line int
	}{
		{"too few fields", "a,b\n1,2\n3\n", nil, Limits{}, 3},
		{"too many fields", "a,b\n1,2\n3,4\n5,6," + secret + "\n", nil, Limits{}, 4},
		{"not an integer", "a,b\n1,2\n3,4\n5," + secret + "\n", &Dictionary{Columns: map[string]Type{"b": Integer}}, Limits{}, 4},
		{"not a whole number", "a\n1\n2.5\n", &Dictionary{Columns: map[string]Type{"a": Integer}}, Limits{}, 3},
		{"not a number", "a\n1\n" + secret + "\n", &Dictionary{Columns: map[string]Type{"a": Numeric}}, Limits{}, 3},
		{"not a date", "a\n2024-01-01\n2024-02-30\n", &Dictionary{Columns: map[string]Type{"a": Date}}, Limits{}, 3},
		{"line after a quoted newline", "a,b\n\"x\ny\",1\n2,z\n", &Dictionary{Columns: map[string]Type{"b": Integer}}, Limits{}, 4},
		{"duplicate header", "a,b,a\n1,2,3\n", nil, Limits{}, 1},
		{"empty header", "a,,c\n1,2,3\n", nil, Limits{}, 1},
		{"too many columns", "a,b,c\n1,2,3\n", nil, Limits{MaxColumns: 2}, 1},
		{"too many levels", "a\nx\ny\nz\n", &Dictionary{Columns: map[string]Type{"a": Categorical}}, Limits{MaxLevels: 2}, 4},
		{"too many rows", many, nil, Limits{MaxRows: 5}, 7},
		{"too many bytes", many, nil, Limits{MaxBytes: 8}, 0},
		{"bare quote", "a\nx\"y\n", nil, Limits{}, 2},
		{"dictionary column absent", "a\n1\n", &Dictionary{Columns: map[string]Type{"b": Integer}}, Limits{}, 1},
		{"patient column absent", "a\n1\n", &Dictionary{Patient: "pid"}, Limits{}, 1},
		{"empty input", "", nil, Limits{}, 1},
	}
	for _, tt := range tests {
		tb, err := ReadCSV(strings.NewReader(tt.in), tt.dict, tt.lim)
		var re *RowError
		if !errors.As(err, &re) {
			t.Errorf("%s: %v, want a RowError", tt.name, err)
			continue
		}
		if tb != nil {
			t.Errorf("%s: a table half read", tt.name)
		}
		if tt.line > 0 && re.Line != tt.line {
			t.Errorf("%s: line %d, want %d (%v)", tt.name, re.Line, tt.line, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error quotes a value: %v", tt.name, err)
		}
	}
}

func sample(t testing.TB) *Table {
	in := "pid,age,bmi,sex,visit,note\nA,50,22.5,F,2020-01-02,hello\nB,NA,,M,,\nC,70,-1e-300,F,1969-12-31,\"a,b\"\n"
	tb, err := ReadCSV(strings.NewReader(in), &Dictionary{Patient: "pid", Columns: map[string]Type{"sex": Categorical}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestEncodeDecode round-trips a table, checks that every single-byte
// change and every truncation is refused, and checks Select and
// WriteCSV.
func TestEncodeDecode(t *testing.T) {
	tb := sample(t)
	var buf bytes.Buffer
	if err := tb.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	enc := buf.Bytes()
	got, err := Decode(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := tb.WriteCSV(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() || got.Rows() != 3 || got.Schema.Patient != "pid" {
		t.Fatalf("round trip:\n%s\nvs\n%s", a.String(), b.String())
	}
	wantCSV := "pid,age,bmi,sex,visit,note\nA,50,22.5,F,2020-01-02,hello\nB,NA,NA,M,NA,NA\nC,70,-1e-300,F,1969-12-31,\"a,b\"\n"
	if a.String() != wantCSV {
		t.Fatalf("WriteCSV:\n%s\nwant\n%s", a.String(), wantCSV)
	}
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 0x41
		if _, err := Decode(bytes.NewReader(bad)); err == nil {
			t.Fatalf("a change of byte %d went unnoticed", i)
		}
	}
	for i := 0; i < len(enc); i++ {
		if _, err := Decode(bytes.NewReader(enc[:i])); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v", i, err)
		}
	}
	if _, err := Decode(bytes.NewReader(append(bytes.Clone(enc), 0))); err == nil {
		t.Fatal("trailing byte accepted")
	}
	sel := tb.Select([]int{2, 0, 7})
	if sel.Rows() != 2 || !slices.Equal(sel.Patients(), []string{"C", "A"}) {
		t.Fatalf("select %v", sel.Patients())
	}
	ages, _ := sel.Float("age")
	if ages[0] != 70 || ages[1] != 50 {
		t.Fatalf("select ages %v", ages)
	}
	codes, levels, _ := sel.Codes("sex")
	if levels[codes[0]] != "F" {
		t.Fatal("select sex")
	}
}

// TestDates checks the date arithmetic against known days.
func TestDates(t *testing.T) {
	for s, want := range map[string]int64{"1970-01-01": 0, "2000-03-01": 11017, "1969-12-31": -1, "1600-02-29": -135081, "2024-02-29": 19782} {
		d, ok := ParseDate(s, false)
		if !ok || d != want || FormatDate(d) != s {
			t.Errorf("%s: %d %v (want %d), back %s", s, d, ok, want, FormatDate(d))
		}
	}
	for _, s := range []string{"2023-02-29", "2024-13-01", "2024-00-10", "24-01-01", "2024/01/01"} {
		if _, ok := ParseDate(s, true); ok {
			t.Errorf("%s accepted", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	if err := sample(f).Encode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := tb.Encode(&out); err != nil {
			t.Fatal(err)
		}
		if err := tb.WriteCSV(io_discard{}); err != nil {
			t.Fatal(err)
		}
		for _, c := range tb.Schema.Columns {
			tb.Float(c.Name)
			tb.Codes(c.Name)
			tb.Strings(c.Name)
		}
		tb.Select([]int{0, 1, -1})
	})
}

type io_discard struct{}

func (io_discard) Write(p []byte) (int, error) { return len(p), nil }

func FuzzReadCSV(f *testing.F) {
	f.Add("a,b\n1,x\n2,y\n", "")
	f.Add("\ufeffp,d\r\nA,2020-01-01\r\nB,NA\r\n", "p")
	f.Add("a\n\"x\ny\"\n", "")
	f.Fuzz(func(t *testing.T, in, patient string) {
		var d *Dictionary
		if patient != "" {
			d = &Dictionary{Patient: patient}
		}
		tb, err := ReadCSV(strings.NewReader(in), d, Limits{MaxBytes: 1 << 16})
		if err != nil {
			if tb != nil {
				t.Fatal("table and error")
			}
			return
		}
		var buf bytes.Buffer
		if err := tb.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := Decode(&buf)
		if err != nil {
			t.Fatalf("decode of an encoded table: %v", err)
		}
		var a, b bytes.Buffer
		tb.WriteCSV(&a)
		back.WriteCSV(&b)
		if a.String() != b.String() {
			t.Fatal("round trip differs")
		}
	})
}

// TestReadCSVLarge reads a table whose columns span many of the blocks
// cells are kept in while reading, with an all-empty column and a long
// cell, and checks every value.
func TestReadCSVLarge(t *testing.T) {
	const rows = 250_000
	long := strings.Repeat("x", 3*chunkSize/2)
	var b strings.Builder
	b.WriteString("id,v,empty,note\n")
	for i := range rows {
		note := "n" + fmt.Sprint(i%7)
		if i == 1234 {
			note = long
		}
		fmt.Fprintf(&b, "P%07d,%d.5,,%s\n", i, i, note)
	}
	tb := mustRead(t, b.String(), &Dictionary{Columns: map[string]Type{"note": Text}})
	ids, _ := tb.Strings("id")
	v, _ := tb.Float("v")
	notes, _ := tb.Strings("note")
	empty, _ := tb.Strings("empty")
	for i := range rows {
		want := "n" + fmt.Sprint(i%7)
		if i == 1234 {
			want = long
		}
		if ids[i] != fmt.Sprintf("P%07d", i) || v[i] != float64(i)+0.5 || notes[i] != want || empty[i] != "" {
			t.Fatalf("row %d: %q %v %d-byte note %q", i, ids[i], v[i], len(notes[i]), empty[i])
		}
	}
}

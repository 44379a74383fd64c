package deid

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDeidentifyTable(t *testing.T) {
	p, _ := Preset("longitudinal")
	e, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	in := "patient_id,issuer,name,diagnosis_date,stage\n" +
		"P1,H1,Someone,2020-03-17,II\n" +
		"P1,H1,Someone,20200401,III\n" +
		",H1,Nobody,2020-01-01,I\n" +
		"P2,H2,Other,not a date,IV\n"
	var out bytes.Buffer
	rep, err := e.DeidentifyTable(&out, strings.NewReader(in), TableOptions{
		IDColumn: "patient_id", IssuerColumn: "issuer", DateColumns: []string{"diagnosis_date"}, DropColumns: []string{"name"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 4 || rep.Written != 3 || rep.Patients != 2 || rep.BadDates != 1 || len(rep.LeftOut) != 1 || rep.Copied != 1 ||
		strings.Join(rep.Dropped, ",") != "issuer,name" || strings.Join(rep.Dates, ",") != "diagnosis_date" {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(rep.LeftOut[0], "line 4") || strings.Contains(rep.LeftOut[0], "Nobody") {
		t.Errorf("left out: %q", rep.LeftOut[0])
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "patient_id,diagnosis_date,stage,"+ClinicalMarkColumn || len(rows) != 4 {
		t.Fatalf("output %v", rows)
	}
	d1, _ := e.ChangeDate("P1", "H1", "2020-03-17")
	if rows[1][0] != e.PatientPseudonym("P1", "H1") || rows[1][1] != d1 || rows[1][2] != "II" || rows[1][1] == "2020-03-17" {
		t.Errorf("row 1: %v", rows[1])
	}
	if rows[3][0] != e.PatientPseudonym("P2", "H2") || rows[3][1] != "" {
		t.Errorf("row with a bad date: %v", rows[3])
	}
	if s := out.String(); strings.Contains(s, "Someone") || strings.Contains(s, "P1,") || strings.Contains(s, "H1") {
		t.Errorf("identifying values left:\n%s", s)
	}

	// Issuers from the images: one issuer is used, several leave the row
	// out, none counts as not found.
	is := Issuers{}
	is.Add(" P1 ", "H1")
	is.Add("P1", "H1")
	is.Add("P2", "H2")
	is.Add("P2", "H3")
	is.Add("", "H9")
	if len(is) != 2 || len(is["P1"]) != 1 {
		t.Fatalf("issuers %v", is)
	}
	out.Reset()
	rep, err = e.DeidentifyTable(&out, strings.NewReader("id,x\nP1,a\nP2,b\nP3,c\n"), TableOptions{IDColumn: "id", Issuers: is})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Written != 2 || rep.NotFound != 1 || len(rep.LeftOut) != 1 || !strings.Contains(rep.LeftOut[0], "2 different issuers") ||
		!strings.Contains(out.String(), e.PatientPseudonym("P1", "H1")) {
		t.Errorf("issuers: %+v\n%s", rep, out.String())
	}

	// The caller's mistakes about columns.
	for _, o := range []TableOptions{
		{},
		{IDColumn: "nope"},
		{IDColumn: "patient_id", DateColumns: []string{"patient_id"}},
		{IDColumn: "patient_id", DropColumns: []string{"patient_id"}},
		{IDColumn: "patient_id", DropColumns: []string{"missing"}},
		{IDColumn: "patient_id", IssuerColumn: "issuer", Issuers: is},
	} {
		if _, err := e.DeidentifyTable(&out, strings.NewReader(in), o); !errors.Is(err, ErrTableColumns) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := e.DeidentifyTable(&out, strings.NewReader("a,a\n1,2\n"), TableOptions{IDColumn: "a"}); !errors.Is(err, ErrTableColumns) {
		t.Errorf("column twice: %v", err)
	}

	// The file form replaces the output whole and leaves nothing else.
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv")
	os.WriteFile(src, []byte(in), 0o600)
	os.WriteFile(dst, []byte("old"), 0o644)
	if err := CheckTable(src, TableOptions{IDColumn: "nope"}); !errors.Is(err, ErrTableColumns) {
		t.Errorf("CheckTable: %v", err)
	}
	if _, err := e.DeidentifyTableFile(dst, src, TableOptions{IDColumn: "nope"}); err == nil {
		t.Error("bad options: no error")
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Error("a failed run changed the output")
	}
	if _, err := e.DeidentifyTableFile(dst, src, TableOptions{IDColumn: "patient_id"}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dst)
	if b, _ := os.ReadFile(dst); !strings.HasPrefix(string(b), "patient_id,issuer,name") || fi.Mode().Perm() != 0o600 {
		t.Errorf("output %v:\n%s", fi.Mode(), b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files in the folder, want 2", len(ents))
	}
}

func TestIssuersRead(t *testing.T) {
	objs := treeSeries(t)
	is := Issuers{}
	if err := is.Read(bytes.NewReader(objs[0]), 1<<20); err != nil {
		t.Fatal(err)
	}
	if len(is) != 1 {
		t.Errorf("issuers %v", is)
	}
	if err := is.Read(strings.NewReader("not DICOM"), 1<<20); err == nil {
		t.Error("not DICOM: no error")
	}
}

// A table in Mosaic's own format names its issuers in
// StandardIssuerColumn: without other issuer options that column keys the
// pseudonyms (as the images' IssuerOfPatientID does) and is left out;
// columns named as dates but not changed are reported.
func TestTableStandardIssuerAndDateLike(t *testing.T) {
	p, err := Preset("basic")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	in := "patient_id,issuer_of_patient_id,diagnosis_date,birth_date,cancer\nP1,HOSP A,2021-01-02,1950-03-04,lung\n"
	var out strings.Builder
	rep, err := e.DeidentifyTable(&out, strings.NewReader(in), TableOptions{IDColumn: "patient_id", DateColumns: []string{"diagnosis_date"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.IssuerColumnFound != StandardIssuerColumn {
		t.Errorf("issuer column found %q, want %q", rep.IssuerColumnFound, StandardIssuerColumn)
	}
	if strings.Contains(out.String(), "HOSP A") || strings.Contains(out.String(), "issuer_of_patient_id") {
		t.Errorf("the issuer column was copied:\n%s", out.String())
	}
	want := e.PatientPseudonym("P1", "HOSP A")
	if !strings.Contains(out.String(), want+",") {
		t.Errorf("pseudonym %s (keyed with the issuer) not in\n%s", want, out.String())
	}
	if !slices.Equal(rep.DateLikeCopied, []string{"birth_date"}) {
		t.Errorf("date-like columns copied %v, want [birth_date]", rep.DateLikeCopied)
	}

	// An explicit issuer wins over the column, which is then copied.
	out.Reset()
	rep, err = e.DeidentifyTable(&out, strings.NewReader(in), TableOptions{IDColumn: "patient_id", Issuer: "HOSP B"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.IssuerColumnFound != "" || !strings.Contains(out.String(), e.PatientPseudonym("P1", "HOSP B")+",") {
		t.Errorf("with --issuer the column was still used (found %q):\n%s", rep.IssuerColumnFound, out.String())
	}
}

package synth

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/table"
)

// TestWriteResearch checks that the research table is deterministic,
// reads with the intended types, has some NA, and that its outcomes
// follow the covariates as the model says (worse with stage).
func TestWriteResearch(t *testing.T) {
	var pats []string
	for i := range 2000 {
		pats = append(pats, fmt.Sprintf("MOS-%016d", i))
	}
	var a, b, c bytes.Buffer
	if err := WriteResearch(&a, pats, 5); err != nil {
		t.Fatal(err)
	}
	WriteResearch(&b, pats, 5)
	WriteResearch(&c, pats, 6)
	if !bytes.Equal(a.Bytes(), b.Bytes()) || bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("not deterministic by seed")
	}
	tb, err := table.ReadCSV(bytes.NewReader(a.Bytes()), &table.Dictionary{Patient: "patient_id"}, table.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]table.Type{"patient_id": table.Text, "age": table.Integer, "sex": table.Categorical, "stage": table.Categorical,
		"hb": table.Numeric, "crp": table.Numeric, "ldh": table.Integer, "albumin": table.Numeric, "response": table.Integer, "pfs_months": table.Numeric}
	for _, col := range tb.Schema.Columns {
		if want[col.Name] != col.Type {
			t.Errorf("%s: %s, want %s", col.Name, col.Type, want[col.Name])
		}
	}
	hb, _ := tb.Float("hb")
	nas := 0
	for _, v := range hb {
		if math.IsNaN(v) {
			nas++
		}
	}
	if nas < 20 || nas > 120 {
		t.Errorf("%d NA of 2000 haemoglobin values", nas)
	}
	stage, levels, _ := tb.Codes("stage")
	resp, _ := tb.Float("response")
	pfs, _ := tb.Float("pfs_months")
	var n, r, p [4]float64
	for i := range stage {
		n[stage[i]]++
		r[stage[i]] += resp[i]
		p[stage[i]] += pfs[i]
	}
	if levels[0] != "I" || levels[3] != "IV" {
		t.Fatalf("levels %v", levels)
	}
	if !(r[0]/n[0] > r[3]/n[3]+0.1) || !(p[0]/n[0] > p[3]/n[3]+10) {
		t.Errorf("outcomes do not worsen with stage: response %v, pfs %v, n %v", r, p, n)
	}
}

package airlock

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strings"
	"testing"
)

// freq is a frequency table of the given counts.
func freq(counts ...float64) []byte {
	t := Table{Output: FormatTable, Version: 1, Kind: "frequency", Dimensions: []string{"stage"}}
	for i, c := range counts {
		t.Cells = append(t.Cells, Cell{Key: []string{fmt.Sprint("S", i)}, Count: &c})
	}
	b, _ := json.Marshal(t)
	return b
}

func check(t *testing.T, pol Policy, perm Permissions, name string, data []byte) Verdict {
	t.Helper()
	return Check(pol, perm, Output{Job: "j1", Name: name, Data: data})
}

func wantDecision(t *testing.T, v Verdict, want Decision, check string) {
	t.Helper()
	if v.Decision != want {
		t.Fatalf("decision %s, want %s; findings %+v", v.Decision, want, v.Findings)
	}
	if check == "" {
		return
	}
	for _, f := range v.Findings {
		if f.Check == check && f.Result == want {
			return
		}
	}
	t.Fatalf("no %s finding of %s in %+v", want, check, v.Findings)
}

func TestPolicyDefaultsAreACRO(t *testing.T) {
	p := Policy{}.WithDefaults()
	if p.CellThreshold != 10 || p.MinDF != 10 || p.DominanceN != 2 || p.DominanceK != 0.9 || p.PRatio != 0.1 || !*p.ZerosDisclose {
		t.Fatalf("defaults %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, weak := range []Policy{{CellThreshold: 3}, {MinDF: 5}, {DominanceK: 0.95}, {PRatio: 0.05}, {DominanceN: 1}} {
		if err := weak.WithDefaults().Validate(); err == nil {
			t.Errorf("policy %+v weaker than ACRO accepted", weak)
		}
	}
}

func TestCellThreshold(t *testing.T) {
	for c := 1.0; c <= 9; c++ {
		v := check(t, Policy{}, Permissions{}, "t.json", freq(20, c, 30))
		wantDecision(t, v, Refuse, "threshold")
		for _, f := range v.Findings {
			if strings.Contains(f.Detail, fmt.Sprint(c)) && f.Check == "threshold" && c != 1 && c != 2 && c != 3 {
				t.Errorf("finding quotes the value: %q", f.Detail)
			}
		}
	}
	wantDecision(t, check(t, Policy{}, Permissions{}, "t.json", freq(10, 12, 30)), Release, "")
	// A stricter node refuses 10.
	wantDecision(t, check(t, Policy{CellThreshold: 11}, Permissions{}, "t.json", freq(10, 12)), Refuse, "threshold")
}

func TestZerosAndUnusual(t *testing.T) {
	wantDecision(t, check(t, Policy{}, Permissions{}, "t.json", freq(10, 0, 30)), Review, "zeros")
	off := false
	wantDecision(t, check(t, Policy{ZerosDisclose: &off}, Permissions{}, "t.json", freq(10, 0, 30)), Release, "")
	wantDecision(t, check(t, Policy{}, Permissions{}, "t.json", freq(10, -12, 30)), Review, "unusual")
	wantDecision(t, check(t, Policy{}, Permissions{}, "t.json", freq(10, 12.5, 30)), Review, "unusual")
	// NaN cannot be JSON; a null count is sent to review.
	wantDecision(t, check(t, Policy{}, Permissions{}, "t.json",
		[]byte(`{"mosaic_output":"table","version":1,"kind":"frequency","cells":[{"key":["a"],"count":null},{"key":["b"],"count":12}]}`)), Review, "threshold")
}

func model(df float64) []byte {
	return fmt.Appendf(nil, `{"mosaic_output":"model","version":1,"family":"gaussian","n":%g,"df_residual":%g,
		"coefficients":[{"term":"(Intercept)","estimate":1.5,"std_error":0.2},{"term":"age","estimate":0.01}]}`, df+2, df)
}

func TestModelDegreesOfFreedom(t *testing.T) {
	wantDecision(t, check(t, Policy{}, Permissions{}, "m.json", model(9)), Refuse, "degrees-of-freedom")
	wantDecision(t, check(t, Policy{}, Permissions{}, "m.json", model(10)), Release, "")
	wantDecision(t, check(t, Policy{}, Permissions{}, "m.json",
		[]byte(`{"mosaic_output":"model","version":1,"n":100,"coefficients":[{"term":"a","estimate":1}]}`)), Review, "degrees-of-freedom")
	wantDecision(t, check(t, Policy{}, Permissions{}, "m.json",
		[]byte(`{"mosaic_output":"model","version":1,"n":100,"df_residual":50,"coefficients":[{"term":"a","estimate":null}]}`)), Review, "unusual")
}

func magnitude(stat string, count, value float64, top ...float64) []byte {
	t := Table{Output: FormatTable, Version: 1, Kind: "magnitude", Statistic: stat, Variable: "dose", Dimensions: []string{"site"}}
	c := Cell{Key: []string{"a"}, Count: &count, Value: &value, Top: top}
	t.Cells = []Cell{c}
	b, _ := json.Marshal(t)
	return b
}

func TestDominanceAndPRatio(t *testing.T) {
	pol := Policy{}
	// 12 units summing to 100; the two largest 50+41 = 91 > 90: refused.
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("sum", 12, 100, 50, 41)), Refuse, "dominance")
	// 50+39 = 89 ≤ 90, and 100-50-39 = 11 ≥ 0.1×50: released.
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("sum", 12, 100, 50, 39)), Release, "")
	// A mean: total = 10 × 12 = 120; 60+50 = 110 > 108: refused.
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("mean", 12, 10, 60, 50)), Refuse, "dominance")
	// 60+40 = 100 ≤ 108; 120-100 = 20 ≥ 6: released.
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("mean", 12, 10, 60, 40)), Release, "")
	// p-ratio alone (with dominance on the largest only, n = 1, which a
	// node may not set but which isolates the rule here):
	// 99 in all, 50 and 45 the largest: 50 ≤ 0.9×99, but 99-95 = 4 <
	// 0.1×50 = 5: refused by the p-ratio.
	p1 := Policy{DominanceN: 1}
	v := check(t, p1, Permissions{}, "s.json", magnitude("sum", 12, 99, 50, 45))
	wantDecision(t, v, Refuse, "p-ratio")
	for _, f := range v.Findings {
		if f.Check == "dominance" && f.Result == Refuse {
			t.Fatalf("dominance (1, 90%%) should pass: %+v", v.Findings)
		}
	}
	// 99 in all, 50 and 43: 6 ≥ 5: released.
	wantDecision(t, check(t, p1, Permissions{}, "s.json", magnitude("sum", 12, 99, 50, 43)), Release, "")
	// Without the top contributions: review.
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("sum", 12, 100)), Review, "dominance")
	// Negative values and contributions: review.
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("sum", 12, -100, 5, 4)), Review, "unusual")
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("sum", 12, 100, 5, -4)), Review, "unusual")
	// The count of a magnitude cell still has its threshold.
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("sum", 4, 100, 30, 30)), Refuse, "threshold")
	// A maximum is one unit's value.
	wantDecision(t, check(t, pol, Permissions{}, "s.json", magnitude("max", 40, 100)), Review, "statistic")
}

func TestStats(t *testing.T) {
	ok := []byte(`{"mosaic_output":"stats","version":1,"statistics":[
		{"name":"age","statistic":"mean","value":60,"count":20,"top":[90,88]},
		{"name":"n","statistic":"count","count":20}]}`)
	wantDecision(t, check(t, Policy{}, Permissions{}, "s.json", ok), Release, "")
	dominated := []byte(`{"mosaic_output":"stats","version":1,"statistics":[
		{"name":"cost","statistic":"sum","value":1000,"count":20,"top":[950,10]}]}`)
	wantDecision(t, check(t, Policy{}, Permissions{}, "s.json", dominated), Refuse, "dominance")
	small := []byte(`{"mosaic_output":"stats","version":1,"statistics":[{"name":"age","statistic":"mean","value":60,"count":3,"top":[70,65]}]}`)
	wantDecision(t, check(t, Policy{}, Permissions{}, "s.json", small), Refuse, "threshold")
	unknownMember := []byte(`{"mosaic_output":"stats","version":1,"statistics":[],"rows":[[1,2]]}`)
	wantDecision(t, check(t, Policy{}, Permissions{}, "s.json", unknownMember), Refuse, "format")
	wantDecision(t, check(t, Policy{}, Permissions{}, "s.json", []byte(`{"mosaic_output":"secret-rows","version":1}`)), Refuse, "type")
}

func TestTypes(t *testing.T) {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(self, []byte("\x7fELF")) {
		t.Fatal("the test binary is not ELF")
	}
	wantDecision(t, check(t, Policy{MaxFileBytes: int64(len(self)) + 1}, Permissions{}, "model.bin", self), Refuse, "type")

	random := make([]byte, 4096)
	rand.Read(random)
	v := check(t, Policy{}, Permissions{}, "weights.csv", random)
	wantDecision(t, v, Refuse, "type")

	var img bytes.Buffer
	m := image.NewGray(image.Rect(0, 0, 8, 8))
	m.Set(1, 1, color.White)
	png.Encode(&img, m)
	v = check(t, Policy{}, Permissions{}, "roc.png", img.Bytes())
	wantDecision(t, v, Review, "unstructured")
	if v.Type != "png" {
		t.Fatalf("type %q", v.Type)
	}
	// A PNG header on other bytes is not a PNG.
	wantDecision(t, check(t, Policy{}, Permissions{}, "x.png", append(slicesClone(pngMagic), random...)), Refuse, "type")

	wantDecision(t, check(t, Policy{}, Permissions{}, "notes.txt", []byte("training went well\n")), Review, "unstructured")
	wantDecision(t, check(t, Policy{}, Permissions{}, "notes.txt", []byte("text with a NUL\x00 byte")), Refuse, "type")
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

// dicomPart10 is a tiny DICOM Part 10 file (preamble, DICM, meta and
// a data set with a patient ID).
func dicomPart10() []byte {
	var b bytes.Buffer
	b.Write(make([]byte, 128))
	b.WriteString("DICM")
	el := func(group, elem uint16, vr string, val string) {
		if len(val)%2 == 1 {
			val += " "
		}
		b.Write([]byte{byte(group), byte(group >> 8), byte(elem), byte(elem >> 8)})
		b.WriteString(vr)
		b.Write([]byte{byte(len(val)), byte(len(val) >> 8)})
		b.WriteString(val)
	}
	el(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1\x00")
	el(0x0010, 0x0020, "LO", "MOSAIC-ABCDEFGH")
	return b.Bytes()
}

// bareDataSet is a data set without preamble in implicit VR little
// endian, as some tools write.
func bareDataSet() []byte {
	var b bytes.Buffer
	el := func(group, elem uint16, val string) {
		if len(val)%2 == 1 {
			val += " "
		}
		b.Write([]byte{byte(group), byte(group >> 8), byte(elem), byte(elem >> 8)})
		n := len(val)
		b.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
		b.WriteString(val)
	}
	el(0x0008, 0x0060, "CT")
	el(0x0010, 0x0020, "MOSAIC-ABCDEFGH")
	el(0x0020, 0x0013, "1")
	return b.Bytes()
}

func TestDICOMRefused(t *testing.T) {
	for name, data := range map[string][]byte{"part10": dicomPart10(), "bare": bareDataSet()} {
		v := check(t, Policy{}, Permissions{}, "slice.dat", data)
		wantDecision(t, v, Refuse, "dicom")
		if v.Type != "dicom" {
			t.Errorf("%s: type %q", name, v.Type)
		}
		wantDecision(t, check(t, Policy{}, Permissions{DICOM: true}, "slice.dat", data), Review, "dicom")
	}
}

func TestRowLevelCSV(t *testing.T) {
	pseud := PseudonymSet([]string{"MOSAIC-ABCDEFGHJKLMNPQR", "MOSAIC-BBCDEFGHJKLMNPQR"})
	// Pseudonyms in a column.
	rows := "id,age\nMOSAIC-ABCDEFGHJKLMNPQR,61\nMOSAIC-BBCDEFGHJKLMNPQR,70\n"
	o := Output{Name: "out.csv", Data: []byte(rows), IsPseudonym: pseud}
	wantDecision(t, Check(Policy{}, Permissions{}, o), Refuse, "row-level")
	// Allowed by the permit: a person still looks.
	wantDecision(t, Check(Policy{}, Permissions{RowLevel: true}, o), Review, "unstructured")
	// Dates.
	dates := "visit,score\n2024-01-02,3.5\n2024-02-03,4.1\n2024-03-09,2.2\n"
	wantDecision(t, check(t, Policy{}, Permissions{}, "d.csv", []byte(dates)), Refuse, "row-level")
	// As many rows as the input.
	var sb strings.Builder
	sb.WriteString("age,score\n")
	for i := range 37 {
		fmt.Fprintf(&sb, "%d,%d\n", 40+i%30, i%7)
	}
	o = Output{Name: "r.csv", Data: []byte(sb.String()), InputRows: []int{37}}
	wantDecision(t, Check(Policy{}, Permissions{}, o), Refuse, "row-level")
	o.InputRows = []int{100}
	wantDecision(t, Check(Policy{}, Permissions{}, o), Review, "unstructured")
	// Counts all 1.
	ones := "stage,n\nI,1\nII,1\nIII,1\n"
	wantDecision(t, check(t, Policy{}, Permissions{}, "c.csv", []byte(ones)), Refuse, "row-level")
	// A count column under the threshold.
	small := "stage,n\nI,12\nII,4\nIII,30\n"
	wantDecision(t, check(t, Policy{}, Permissions{}, "c.csv", []byte(small)), Refuse, "threshold")
	fine := "stage,n\nI,12\nII,14\nIII,30\n"
	wantDecision(t, check(t, Policy{}, Permissions{}, "c.csv", []byte(fine)), Review, "unstructured")
	// A structured table whose cells are as many as an input's rows.
	o = Output{Name: "t.json", Data: freq(10, 11, 12, 13), InputRows: []int{4}}
	wantDecision(t, Check(Policy{}, Permissions{}, o), Refuse, "row-level")
	// A table labelled with pseudonyms.
	tb := Table{Output: FormatTable, Version: 1, Kind: "frequency", Cells: []Cell{{Key: []string{"MOSAIC-ABCDEFGHJKLMNPQR"}, Count: ptr(12)}, {Key: []string{"x"}, Count: ptr(15)}}}
	b, _ := json.Marshal(tb)
	wantDecision(t, Check(Policy{}, Permissions{}, Output{Name: "t.json", Data: b, IsPseudonym: pseud}), Refuse, "row-level")
	// Text naming a pseudonym.
	wantDecision(t, Check(Policy{}, Permissions{}, Output{Name: "n.txt", Data: []byte("worst case: mosaic-abcdefghjklmnpqr."), IsPseudonym: pseud}), Refuse, "row-level")
}

func ptr(f float64) *float64 { return &f }

func TestSizeLimits(t *testing.T) {
	pol := Policy{MaxFileBytes: 1000, MaxTotalBytes: 1800, MaxFiles: 3}
	wantDecision(t, check(t, pol, Permissions{}, "big.json", bytes.Repeat([]byte("a"), 1001)), Refuse, "size")
	outs := []Output{
		{Name: "a", Data: model(20)},
		{Name: "b", Data: bytes.Repeat([]byte("x"), 900)},
		{Name: "c", Data: bytes.Repeat([]byte("y"), 900)},
		{Name: "d", Data: model(20)},
	}
	vs := CheckJob(pol, Permissions{}, outs)
	wantDecision(t, vs[0], Release, "")
	wantDecision(t, vs[1], Review, "")
	wantDecision(t, vs[2], Refuse, "total-size")
	wantDecision(t, vs[3], Refuse, "count")
}

func TestManualRelease(t *testing.T) {
	wantDecision(t, check(t, Policy{ManualRelease: true}, Permissions{}, "m.json", model(30)), Review, "manual-release")
	// Manual release never softens a refusal.
	wantDecision(t, check(t, Policy{ManualRelease: true}, Permissions{}, "m.json", model(3)), Refuse, "degrees-of-freedom")
}

func TestCheckNeverPanics(t *testing.T) {
	inputs := [][]byte{nil, {}, []byte("{"), []byte(`{"mosaic_output":"table"}`), []byte(`{"mosaic_output":"table","kind":"magnitude","cells":[{}]}`),
		[]byte(`{"mosaic_output":"stats","statistics":[{"statistic":"mean","value":1,"top":[1,2]}]}`), []byte(`{"mosaic_output":""}`),
		[]byte(`{"mosaic_output":"model","df_residual":"x"}`), []byte("a,b\n\"unterminated\n"), make([]byte, 200)}
	for _, in := range inputs {
		v := Check(Policy{}, Permissions{}, Output{Name: "x", Data: in})
		if v.Decision == Release {
			t.Errorf("%q released", in)
		}
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"mosaic_output":"table","version":1,"kind":"magnitude","statistic":"mean","cells":[{"count":12,"value":3,"top":[1,2]}]}`))
	f.Add([]byte("a,b\n1,2\n"))
	f.Add(dicomPart10())
	f.Fuzz(func(t *testing.T, data []byte) {
		v := Check(Policy{}, Permissions{}, Output{Name: "x.csv", Data: data})
		if v.Decision == "" {
			t.Fatal("no decision")
		}
	})
}

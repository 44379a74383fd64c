package deid

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// TestOwnOutputKept: an object de-identified by Mosaic with this site key
// passes again with its pseudonyms, UIDs and shifted dates as they are
// (the same result as from the original), while the rest of the policy
// and the leak check still apply.
func TestOwnOutputKept(t *testing.T) {
	for _, preset := range Presets {
		e := testEngine(t, preset)
		orig := encodeFile(t, ctFile(t))
		once, raw1, res1 := deidBytes(t, e, orig)
		if m, _ := once.Dataset.String(tagDeidentificationMethod); !strings.Contains(m, "K:"+e.fp+" S:") {
			t.Fatalf("%s: method %q has no fingerprint and seal", preset, m)
		}
		twice, _, res2 := deidBytes(t, e, raw1)
		if res2.PatientPseudonym != res1.PatientPseudonym || res2.StudyUID != res1.StudyUID ||
			res2.SeriesUID != res1.SeriesUID || res2.SOPInstanceUID != res1.SOPInstanceUID {
			t.Errorf("%s: second pass changed the identity:\n%+v\n%+v", preset, res1, res2)
		}
		for _, tag := range []dicom.Tag{tagPatientName, 0x00080020, 0x00080021, tagDeidentificationMethod} {
			a, _ := once.Dataset.String(tag)
			b, _ := twice.Dataset.String(tag)
			if a != b {
				t.Errorf("%s: %s changed on the second pass: %q -> %q", preset, tag, a, b)
			}
		}
		// The rest of the policy applies: an attribute added since goes.
		f, err := dicom.Parse(raw1, dicom.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f.Dataset.SetStrings(0x00101040, dicom.LO, "Birkenweg 7, Nordwald") // Patient's Address
		again, raw3, _ := deidBytes(t, e, encodeFile(t, f))
		if again.Dataset.Has(0x00101040) || bytes.Contains(raw3, []byte("Birkenweg")) {
			t.Errorf("%s: the policy was not applied to own output", preset)
		}
	}

	// Another policy with the same key takes its own prefix: the result
	// is what de-identifying the original under it gives.
	basic, eucaim := testEngine(t, "basic"), testEngine(t, "eucaim")
	orig := encodeFile(t, ctFile(t))
	_, viaBasic, _ := deidBytes(t, basic, orig)
	_, _, direct := deidBytes(t, eucaim, orig)
	_, _, chained := deidBytes(t, eucaim, viaBasic)
	if chained.PatientPseudonym != direct.PatientPseudonym || chained.StudyUID != direct.StudyUID {
		t.Errorf("basic then eucaim gives %s %s, eucaim alone %s %s", chained.PatientPseudonym, chained.StudyUID,
			direct.PatientPseudonym, direct.StudyUID)
	}
}

func rejectionCode(err error) string {
	var rj *Rejection
	if errors.As(err, &rj) {
		return rj.Code
	}
	return ""
}

// TestMarkedInputRefused: Mosaic output made with another site key, or
// altered since, or with no fingerprint, is refused with a reason; output
// of another tool is de-identified again.
func TestMarkedInputRefused(t *testing.T) {
	e := testEngine(t, "eucaim")
	otherKey, _ := NewKey(bytes.Repeat([]byte{9}, KeySize))
	p, _ := Preset("eucaim")
	other, err := NewEngine(p, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	_, fromOther, _ := deidBytes(t, other, encodeFile(t, ctFile(t)))
	_, err = e.Rewrite(&bytes.Buffer{}, bytes.NewReader(fromOther), dicom.ReadOptions{})
	if rejectionCode(err) != "other-site-key" || !strings.Contains(err.Error(), "another site key") {
		t.Errorf("other key: %v", err)
	}

	_, own, _ := deidBytes(t, e, encodeFile(t, ctFile(t)))
	f, _ := dicom.Parse(own, dicom.ReadOptions{})
	f.Dataset.SetStrings(tagPatientID, dicom.LO, "PID-48213377") // an original ID under the marks
	_, err = e.Rewrite(&bytes.Buffer{}, bytes.NewReader(encodeFile(t, f)), dicom.ReadOptions{})
	if rejectionCode(err) != "altered-deid" {
		t.Errorf("altered: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "48213377") {
		t.Errorf("reason names the value")
	}

	f, _ = dicom.Parse(own, dicom.ReadOptions{})
	f.Dataset.SetStrings(tagDeidentificationMethod, dicom.LO, "MOSAIC DEID EUCAIM")
	_, err = e.Rewrite(&bytes.Buffer{}, bytes.NewReader(encodeFile(t, f)), dicom.ReadOptions{})
	if rejectionCode(err) != "unbound-deid" {
		t.Errorf("no fingerprint: %v", err)
	}

	// Another tool's output: de-identified again like original data.
	f = ctFile(t)
	f.Dataset.SetStrings(tagPatientIdentityRemoved, dicom.CS, "YES")
	f.Dataset.SetStrings(tagDeidentificationMethod, dicom.LO, "OTHER TOOL 2.1")
	f.Dataset.SetSequence(tagDeidentificationMethodCodeSequence, codeItem("113100", "Basic Application Confidentiality Profile"))
	_, _, res := deidBytes(t, e, encodeFile(t, f))
	_, _, fromRaw := deidBytes(t, e, encodeFile(t, ctFile(t)))
	if res.PatientPseudonym != fromRaw.PatientPseudonym || res.StudyUID != fromRaw.StudyUID {
		t.Errorf("another tool's output was not de-identified again")
	}
}

// studyDate returns the Study Date of a DICOM output.
func studyDate(t *testing.T, f *dicom.File) string {
	t.Helper()
	d, _ := f.Dataset.String(0x00080020)
	return d
}

// TestOwnOutputDateModes: the dates of own output are left as they are
// only when the seal says they were shifted exactly as this policy
// shifts them; after any other treatment this policy's treatment is
// applied on top. The date treatment is sealed and cannot be altered.
func TestOwnOutputDateModes(t *testing.T) {
	orig := encodeFile(t, ctFile(t)) // Study Date 20230615
	out := map[string][]byte{}
	date := map[string]string{}
	for _, preset := range Presets {
		f, raw, _ := deidBytes(t, testEngine(t, preset), orig)
		out[preset], date[preset] = raw, studyDate(t, f)
	}
	if date["eucaim"] != "20230601" || date["basic"] != "" || date["longitudinal"] == "20230615" || date["longitudinal"] == "" {
		t.Fatalf("direct dates %v", date)
	}
	inRange := func(d string) bool { // shifted 1 to 365 days back from the first of June
		if len(d) != 8 || d >= "20230601" {
			return false
		}
		return d >= "20220601"
	}
	for _, c := range []struct {
		from, to string
		ok       func(string) bool
	}{
		// Month truncation is not a shift: the longitudinal policy shifts
		// the truncated date (it used to be kept, unshifted).
		{"eucaim", "longitudinal", inRange},
		{"longitudinal", "longitudinal", func(d string) bool { return d == date["longitudinal"] }},
		{"longitudinal", "eucaim", func(d string) bool { return d == date["longitudinal"][:6]+"01" }},
		{"longitudinal", "basic", func(d string) bool { return d == "" }},
		{"eucaim", "eucaim", func(d string) bool { return d == "20230601" }},
		{"eucaim", "basic", func(d string) bool { return d == "" }},
		{"basic", "longitudinal", func(d string) bool { return d == "" }},
		{"basic", "eucaim", func(d string) bool { return d == "" }},
	} {
		e := testEngine(t, c.to)
		f, _, _ := deidBytes(t, e, out[c.from])
		if d := studyDate(t, f); !c.ok(d) {
			t.Errorf("%s then %s: Study Date %q", c.from, c.to, d)
		}
		if m, _ := f.Dataset.String(tagDeidentificationMethod); !strings.Contains(m, " D:"+e.dateMark()+" ") {
			t.Errorf("%s then %s: method %q does not name the date treatment %s", c.from, c.to, m, e.dateMark())
		}
	}

	// Another greatest shift gives other shifts: shifted again.
	p, _ := Preset("longitudinal")
	p.MaxShiftDays = 30
	short, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if f, _, _ := deidBytes(t, short, out["longitudinal"]); studyDate(t, f) == date["longitudinal"] {
		t.Errorf("a shift of another greatest shift was taken as this policy's")
	}

	// The date treatment is sealed: a month-truncated output relabelled
	// as shifted is refused.
	long := testEngine(t, "longitudinal")
	f, err := dicom.Parse(out["eucaim"], dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := f.Dataset.String(tagDeidentificationMethod)
	f.Dataset.SetStrings(tagDeidentificationMethod, dicom.LO, strings.Replace(m, " D:M ", " D:"+long.dateMark()+" ", 1))
	var buf bytes.Buffer
	if _, err := long.Rewrite(&buf, bytes.NewReader(encodeFile(t, f)), dicom.ReadOptions{}); !errors.Is(err, ErrRejected) ||
		!strings.Contains(err.Error(), "seal") {
		t.Errorf("relabelled date treatment: %v", err)
	}

	// A mark written before the date treatment was recorded (its seal
	// without it) still passes, its treatment taken as unknown: this
	// policy's is applied, even over a shift.
	f, err = dicom.Parse(out["longitudinal"], dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Dataset.SetStrings(tagDeidentificationMethod, dicom.LO, methodPrefix+"LONGITUDINAL K:"+long.fp+" S:"+long.seal(&f.Dataset, ""))
	old, _, res := deidBytes(t, long, encodeFile(t, f))
	if d := studyDate(t, old); d == date["longitudinal"] || d == "" || d >= date["longitudinal"] {
		t.Errorf("older mark: Study Date %q, want a further shift of %s", d, date["longitudinal"])
	}
	if pid, _ := f.Dataset.String(tagPatientID); res.PatientPseudonym != pid {
		t.Errorf("older mark: pseudonym %s not kept (%s)", res.PatientPseudonym, pid)
	}
}

// TestClinicalRowSeal: a table 'mosaic deid clinical' wrote passes again
// with its pseudonyms, and its dates are kept only when they were treated
// as the policy treats them; rows whose IDs merely look like pseudonyms,
// or whose values changed since, are original data; a table of another
// key is refused.
func TestClinicalRowSeal(t *testing.T) {
	in := "patient_id,issuer_of_patient_id,diagnosis_date,stage\n" +
		"PID-48213377,KLINIKUM NORDWALD,2023-06-15,II\n" +
		"PID-55120934,KLINIKUM NORDWALD,2022-01-20,III\n"
	opts := TableOptions{IDColumn: "patient_id", DateColumns: []string{"diagnosis_date"}}
	table := func(e *Engine, in string) (string, TableReport) {
		t.Helper()
		var out bytes.Buffer
		rep, err := e.DeidentifyTable(&out, strings.NewReader(in), opts)
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), rep
	}
	rows := func(s string) [][]string {
		t.Helper()
		r, err := csv.NewReader(strings.NewReader(s)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	outs := map[string]string{}
	for _, preset := range Presets {
		e := testEngine(t, preset)
		once, rep := table(e, in)
		outs[preset] = once
		if rep.Sealed != 0 || rep.Unsealed != 0 {
			t.Errorf("%s: original rows counted as sealed %d or unsealed %d", preset, rep.Sealed, rep.Unsealed)
		}
		twice, rep := table(e, once)
		if twice != once || rep.Sealed != 2 {
			t.Errorf("%s: own table changed on a second pass (%d sealed):\n%s\n%s", preset, rep.Sealed, once, twice)
		}
		r := rows(once)
		ps := e.PatientPseudonym("PID-48213377", "KLINIKUM NORDWALD")
		d, _ := e.ChangeDate("PID-48213377", "KLINIKUM NORDWALD", "2023-06-15")
		if r[1][0] != ps || r[1][1] != d {
			t.Errorf("%s: row %v, want %s %s", preset, r[1], ps, d)
		}

		// The same pseudonyms with real dates and no seal: original
		// data, pseudonymised and treated again, and counted.
		forged := "patient_id,diagnosis_date,stage\n" + ps + ",2023-06-15,II\n"
		f, rep := table(e, forged)
		fr := rows(f)
		if rep.Unsealed != 1 || rep.Sealed != 0 || fr[1][0] == ps || fr[1][0] != e.PatientPseudonym(ps, "") {
			t.Errorf("%s: unsealed pseudonym kept: %+v %v", preset, rep, fr[1])
		}
		if want, _ := e.ChangeDate(ps, "", "2023-06-15"); fr[1][1] != want {
			t.Errorf("%s: unsealed row's date %q, want %q", preset, fr[1][1], want)
		}

		// A sealed row whose date was changed since: original data too.
		r[1][1] = "2023-06-15"
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.WriteAll(r)
		if _, rep := table(e, b.String()); rep.Sealed != 1 || rep.Unsealed != 1 {
			t.Errorf("%s: altered row: %+v", preset, rep)
		}
	}

	// Across policies of one key: the pseudonym stays (with the new
	// prefix); a month-truncated date is shifted by a longitudinal pass,
	// a shifted one kept.
	long, eucaim := testEngine(t, "longitudinal"), testEngine(t, "eucaim")
	ps := rows(outs["eucaim"])[1][0]
	viaEucaim, rep := table(long, outs["eucaim"])
	r := rows(viaEucaim)
	want, _ := long.ChangeDate(ps, "", "2023-06-01")
	if rep.Sealed != 2 || r[1][0] != rows(outs["longitudinal"])[1][0] || r[1][1] != want || r[1][1] == "2023-06-01" {
		t.Errorf("eucaim then longitudinal: %+v %v, want date %s", rep, r[1], want)
	}
	viaLong, _ := table(eucaim, outs["longitudinal"])
	if d := rows(viaLong)[1][1]; d != rows(outs["longitudinal"])[1][1][:8]+"01" {
		t.Errorf("longitudinal then eucaim: date %s", d)
	}

	// Another site key: refused.
	p, _ := Preset("longitudinal")
	k, err := NewKey(bytes.Repeat([]byte{9}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewEngine(p, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.DeidentifyTable(io.Discard, strings.NewReader(outs["longitudinal"]), opts); !errors.Is(err, ErrOtherSiteKey) {
		t.Errorf("table of another key: %v", err)
	}
}

// Only the top level of own output is sealed: a raw patient ID put into a
// sequence item since is mapped (and never kept), as in any input.
func TestOwnOutputNestedIDMapped(t *testing.T) {
	for _, preset := range Presets {
		e := testEngine(t, preset)
		_, raw1, _ := deidBytes(t, e, encodeFile(t, ctFile(t)))
		f, err := dicom.Parse(raw1, dicom.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		item := dicom.NewItem()
		f.Dataset.SetSequence(0x00082218, item) // Anatomic Region Sequence, kept by every policy
		item.Dataset.SetStrings(tagPatientID, dicom.LO, "MRN-77123456")
		var out bytes.Buffer
		_, err = e.Rewrite(&out, bytes.NewReader(encodeFile(t, f)), dicom.ReadOptions{})
		if err == nil && bytes.Contains(out.Bytes(), []byte("77123456")) {
			t.Errorf("%s: a raw patient ID in a sequence of own output was kept", preset)
		}
	}
}

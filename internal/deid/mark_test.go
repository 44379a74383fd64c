package deid

import (
	"bytes"
	"errors"
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

// TestClinicalPseudonymKept: a clinical table already pseudonymised with
// this key keeps its IDs and (shifted) dates at the node.
func TestClinicalPseudonymKept(t *testing.T) {
	for _, preset := range Presets {
		e := testEngine(t, preset)
		ps := e.PatientPseudonym("PID-48213377", "KLINIKUM NORDWALD")
		if got := e.PatientPseudonym(ps, ""); got != ps {
			t.Errorf("%s: pseudonym %s became %s", preset, ps, got)
		}
		d, err := e.ChangeDate("PID-48213377", "KLINIKUM NORDWALD", "2023-06-15")
		if err != nil {
			t.Fatal(err)
		}
		if d2, err := e.ChangeDate(ps, "", d); err != nil || d2 != d {
			t.Errorf("%s: date %s changed again to %s (%v)", preset, d, d2, err)
		}
		if got := e.PatientPseudonym("MOS-12345678", ""); got == "MOS-12345678" {
			t.Errorf("%s: an ordinary ID kept", preset)
		}
	}
	e := testEngine(t, "eucaim")
	if got := e.PatientPseudonym("MOS-ABCDEFGHJKLMNPQR", ""); got != "EUCAIM-ABCDEFGHJKLMNPQR" {
		t.Errorf("basic pseudonym under eucaim: %s", got)
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

package deid

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// ctFile builds a small CT object with identifying values at the top
// level, in nested sequences and in a private block.
func ctFile(t testing.TB) *dicom.File {
	t.Helper()
	f := &dicom.File{Preamble: make([]byte, 128), Syntax: dicom.Syntax{UID: dicom.ExplicitVRLittleEndian}}
	ds := &f.Dataset
	set := func(d *dicom.Dataset, kw string, v ...string) {
		t.Helper()
		e, ok := dicom.LookupKeyword(kw)
		if !ok {
			t.Fatalf("no keyword %s", kw)
		}
		if err := d.SetStrings(e.Tag, e.VR, v...); err != nil {
			t.Fatal(err)
		}
	}
	set(ds, "SpecificCharacterSet", "ISO_IR 192")
	set(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.2")
	set(ds, "SOPInstanceUID", "1.2.826.0.1.3680043.2.1.1")
	set(ds, "StudyInstanceUID", "1.2.826.0.1.3680043.2.1")
	set(ds, "SeriesInstanceUID", "1.2.826.0.1.3680043.2.1.2")
	set(ds, "FrameOfReferenceUID", "1.2.826.0.1.3680043.2.1.3")
	set(ds, "Modality", "CT")
	set(ds, "StudyDate", "20230615")
	set(ds, "SeriesDate", "20230615")
	set(ds, "StudyTime", "101500")
	set(ds, "AccessionNumber", "ACC7731942")
	set(ds, "InstitutionName", "Klinikum Nordwald")
	set(ds, "ReferringPhysicianName", "Brenner^Walburga")
	set(ds, "StudyDescription", "CT THORAX Zwiebelmann")
	set(ds, "PatientName", "Zwiebelmann^Hildegard")
	set(ds, "PatientID", "PID-48213377")
	set(ds, "IssuerOfPatientID", "KLINIKUM NORDWALD")
	set(ds, "PatientBirthDate", "19510203")
	set(ds, "PatientSex", "F")
	set(ds, "PatientAge", "072Y")
	set(ds, "PatientAddress", "Lindenallee 12, 99999 Nordwald")
	set(ds, "Manufacturer", "Acme Medical")
	other := dicom.NewItem()
	ds.SetSequence(0x00101002, other) // OtherPatientIDsSequence
	set(&other.Dataset, "PatientID", "NAT-5512093")
	ref := dicom.NewItem()
	ds.SetSequence(0x00081140, ref) // ReferencedImageSequence
	set(&ref.Dataset, "ReferencedSOPClassUID", "1.2.840.10008.5.1.4.1.1.2")
	set(&ref.Dataset, "ReferencedSOPInstanceUID", "1.2.826.0.1.3680043.2.1.9")
	ds.SetStrings(0x00090010, dicom.LO, "ACME 1.0")
	ds.SetStrings(0x00091001, dicom.LO, "PID-48213377")
	ds.SetStrings(0x00091002, dicom.LO, "harmless")
	ds.SetInts(0x00280010, dicom.US, 2)
	ds.SetInts(0x00280011, dicom.US, 2)
	ds.SetBytes(dicom.TagPixelData, dicom.OW, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	return f
}

func encodeFile(t testing.TB, f *dicom.File) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := dicom.WriteFile(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func deidBytes(t testing.TB, e *Engine, in []byte) (*dicom.File, []byte, Result) {
	t.Helper()
	var out bytes.Buffer
	res, err := e.Rewrite(&out, bytes.NewReader(in), dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := dicom.Parse(out.Bytes(), dicom.ReadOptions{})
	if err != nil {
		t.Fatalf("output does not read back: %v", err)
	}
	return f, out.Bytes(), res
}

func TestBasicProfile(t *testing.T) {
	in := encodeFile(t, ctFile(t))
	e := testEngine(t, "basic")
	f, out, res := deidBytes(t, e, in)
	ds := &f.Dataset
	for _, s := range []string{"Zwiebelmann", "Hildegard", "PID-48213377", "NAT-5512093", "ACC7731942", "Nordwald",
		"NORDWALD", "Brenner", "19510203", "Lindenallee", "1.2.826.0.1.3680043.2.1"} {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("output still holds %q", s)
		}
	}
	if got, _ := ds.String(tagPatientID); got != res.PatientPseudonym || !strings.HasPrefix(got, "MOS-") {
		t.Errorf("PatientID %q, result %q", got, res.PatientPseudonym)
	}
	if got, _ := ds.String(tagPatientName); !strings.HasPrefix(got, "MOS-") {
		t.Errorf("PatientName %q", got)
	}
	// Type 2 attributes are emptied, not removed; Type 3 are removed.
	// Where the table allows removing or emptying and the Type is not
	// known to be 3, the attribute is emptied (InstitutionName, X/Z/D).
	for _, kw := range []string{"StudyDate", "AccessionNumber", "ReferringPhysicianName", "PatientBirthDate", "PatientSex", "InstitutionName"} {
		el, _ := dicom.LookupKeyword(kw)
		if e := ds.Get(el.Tag); e == nil || len(e.Value) != 0 {
			t.Errorf("%s: want present and empty, got %+v", kw, e)
		}
	}
	for _, kw := range []string{"PatientAddress", "StudyDescription", "OtherPatientIDsSequence", "PatientAge", "SeriesDate"} {
		el, _ := dicom.LookupKeyword(kw)
		if ds.Has(el.Tag) {
			t.Errorf("%s not removed", kw)
		}
	}
	if ds.Has(0x00090010) || ds.Has(0x00091001) || ds.Has(0x00091002) {
		t.Error("private elements kept without the retain safe private option")
	}
	// UIDs are mapped the same way everywhere, references included.
	if got := ds.UID(dicom.TagSOPInstanceUID); got != e.h.uid("1.2.826.0.1.3680043.2.1.1") || got != res.SOPInstanceUID {
		t.Errorf("SOP Instance UID %q", got)
	}
	if got := f.Meta.UID(dicom.TagMediaStorageSOPInstanceUID); got != res.SOPInstanceUID {
		t.Errorf("meta SOP instance %q, want %q", got, res.SOPInstanceUID)
	}
	ref := ds.Get(0x00081140)
	if ref == nil || len(ref.Items) != 1 || ref.Items[0].UID(0x00081155) != e.h.uid("1.2.826.0.1.3680043.2.1.9") {
		t.Errorf("referenced image UID not mapped: %+v", ref)
	}
	if ref != nil && ref.Items[0].UID(0x00081150) != "1.2.840.10008.5.1.4.1.1.2" {
		t.Error("SOP class UID in a reference changed")
	}
	// Kept: public, not identifying.
	if m, _ := ds.String(0x00080070); m != "Acme Medical" {
		t.Errorf("Manufacturer %q", m)
	}
	// Conformance attributes.
	if v, _ := ds.String(tagPatientIdentityRemoved); v != "YES" {
		t.Errorf("PatientIdentityRemoved %q", v)
	}
	if v, _ := ds.String(tagLongitudinalTemporalInfoModified); v != "REMOVED" {
		t.Errorf("LongitudinalTemporalInformationModified %q", v)
	}
	codes := ds.Get(tagDeidentificationMethodCodeSequence)
	if codes == nil || len(codes.Items) != 1 {
		t.Fatalf("method code sequence: %+v", codes)
	}
	if v, _ := codes.Items[0].String(tagCodeValue); v != "113100" {
		t.Errorf("code %q", v)
	}
	if !bytes.Equal(ds.Get(dicom.TagPixelData).Value, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Error("pixel data changed")
	}
}

func TestLongitudinalProfile(t *testing.T) {
	in := encodeFile(t, ctFile(t))
	e := testEngine(t, "longitudinal")
	f, _, _ := deidBytes(t, e, in)
	ds := &f.Dataset
	study, _ := ds.String(0x00080020)
	series, _ := ds.String(0x00080021)
	if study == "" || study == "20230615" || study != series {
		t.Errorf("dates not shifted consistently: study %q series %q", study, series)
	}
	if v, _ := ds.String(0x00100040); v != "F" {
		t.Errorf("patient sex not retained: %q", v)
	}
	if v, _ := ds.String(0x00101010); v != "072Y" {
		t.Errorf("patient age not retained: %q", v)
	}
	if v, _ := ds.String(tagLongitudinalTemporalInfoModified); v != "MODIFIED" {
		t.Errorf("LongitudinalTemporalInformationModified %q", v)
	}
	codes := ds.Get(tagDeidentificationMethodCodeSequence)
	if codes == nil || len(codes.Items) != 4 {
		t.Fatalf("want the profile and 3 options in the code sequence, got %+v", codes)
	}
	// The same patient in another object gets the same shift.
	g := ctFile(t)
	g.Dataset.SetStrings(dicom.TagSOPInstanceUID, dicom.UI, "1.2.826.0.1.3680043.2.1.77")
	g.Dataset.SetStrings(0x00080020, dicom.DA, "20230715")
	f2, _, _ := deidBytes(t, e, encodeFile(t, g))
	study2, _ := f2.Dataset.String(0x00080020)
	d1, _ := dicom.ParseDA(study)
	d2, _ := dicom.ParseDA(study2)
	if d2.Time.Sub(d1.Time).Hours() != 30*24 {
		t.Errorf("interval between studies changed: %s and %s", study, study2)
	}
}

func TestEUCAIMProfile(t *testing.T) {
	p, _ := Preset("eucaim")
	p.SiteID = "SITE-042"
	e, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	f, _, _ := deidBytes(t, e, encodeFile(t, ctFile(t)))
	ds := &f.Dataset
	if v, _ := ds.String(0x00080020); v != "20230601" {
		t.Errorf("study date %q, want first of the month", v)
	}
	if v, _ := ds.String(tagInstitutionName); v != "SITE-042" {
		t.Errorf("institution %q, want the site ID", v)
	}
	if e := ds.Get(tagPatientBirthDate); e == nil || len(e.Value) != 0 {
		t.Errorf("birth date: want present and empty, got %+v", e)
	}
	if v, _ := ds.String(tagPatientID); !strings.HasPrefix(v, "EUCAIM-") {
		t.Errorf("patient ID %q", v)
	}
}

func TestRetainSafePrivate(t *testing.T) {
	p, _ := Preset("basic")
	p.Options = append(p.Options, RetainSafePrivate.String())
	p.RetainPrivate = []PrivateRule{{Creator: "ACME 1.0", Elements: []byte{0x02}}}
	e, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	f, _, _ := deidBytes(t, e, encodeFile(t, ctFile(t)))
	ds := &f.Dataset
	if !ds.Has(0x00090010) || !ds.Has(0x00091002) {
		t.Error("retained private element or its creator removed")
	}
	if ds.Has(0x00091001) {
		t.Error("private element not on the list kept")
	}
}

func TestRejections(t *testing.T) {
	e := testEngine(t, "basic")
	tests := []struct {
		name string
		edit func(*dicom.Dataset)
		code string
	}{
		{"burned in", func(ds *dicom.Dataset) { ds.SetStrings(tagBurnedInAnnotation, dicom.CS, "YES") }, "burned-in-annotation"},
		{"faces", func(ds *dicom.Dataset) { ds.SetStrings(tagRecognizableVisualFeatures, dicom.CS, "YES") }, "recognizable-features"},
		{"ultrasound", func(ds *dicom.Dataset) { ds.SetStrings(dicom.TagSOPClassUID, dicom.UI, "1.2.840.10008.5.1.4.1.1.6.1") }, "pixel-text-risk"},
		{"endoscopy", func(ds *dicom.Dataset) { ds.SetStrings(tagModality, dicom.CS, "ES") }, "pixel-text-risk"},
		{"no uid", func(ds *dicom.Dataset) { ds.Remove(dicom.TagSOPInstanceUID) }, "missing-uid"},
		{"no study uid", func(ds *dicom.Dataset) { ds.Remove(tagStudyInstanceUID) }, "missing-uid"},
		{"no series uid", func(ds *dicom.Dataset) { ds.Remove(tagSeriesInstanceUID) }, "missing-uid"},
	}
	for _, tt := range tests {
		f := ctFile(t)
		tt.edit(&f.Dataset)
		var out bytes.Buffer
		_, err := e.Rewrite(&out, bytes.NewReader(encodeFile(t, f)), dicom.ReadOptions{})
		var rj *Rejection
		if !errors.As(err, &rj) || rj.Code != tt.code || !errors.Is(err, ErrRejected) {
			t.Errorf("%s: got %v, want rejection %s", tt.name, err, tt.code)
		}
		if out.Len() != 0 {
			t.Errorf("%s: rejected object wrote %d bytes", tt.name, out.Len())
		}
		if err != nil && strings.Contains(err.Error(), "Zwiebelmann") {
			t.Errorf("%s: reason carries patient data", tt.name)
		}
	}
	// A policy may allow a class, but never burned-in annotation.
	p, _ := Preset("basic")
	p.AllowClasses = []string{"1.2.840.10008.5.1.4.1.1.6.1"}
	allow, _ := NewEngine(p, testKey(t))
	f := ctFile(t)
	f.Dataset.SetStrings(dicom.TagSOPClassUID, dicom.UI, "1.2.840.10008.5.1.4.1.1.6.1")
	if _, err := allow.Rewrite(&bytes.Buffer{}, bytes.NewReader(encodeFile(t, f)), dicom.ReadOptions{}); err != nil {
		t.Errorf("allowed class rejected: %v", err)
	}
}

func TestLeakCheckRejects(t *testing.T) {
	// A policy that keeps a description holding the patient's name must
	// not let it through.
	p, _ := Preset("basic")
	p.Overrides = map[string]string{"StudyDescription": "K"}
	e, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = e.Rewrite(&out, bytes.NewReader(encodeFile(t, ctFile(t))), dicom.ReadOptions{})
	var rj *Rejection
	if !errors.As(err, &rj) || rj.Code != "leak" {
		t.Fatalf("got %v, want a leak rejection", err)
	}
	if strings.Contains(rj.Reason, "Zwiebelmann") {
		t.Error("reason names the value")
	}
	// Name variants are found in any order.
	f := ctFile(t)
	f.Dataset.SetStrings(0x00081030, dicom.LO, "hildegard zwiebelmann follow-up")
	_, err = e.Rewrite(&bytes.Buffer{}, bytes.NewReader(encodeFile(t, f)), dicom.ReadOptions{})
	if !errors.As(err, &rj) || rj.Code != "leak" {
		t.Fatalf("reordered name: got %v, want a leak rejection", err)
	}
}

func TestRunsAreConsistent(t *testing.T) {
	in := encodeFile(t, ctFile(t))
	_, a, ra := deidBytes(t, testEngine(t, "basic"), in)
	_, b, rb := deidBytes(t, testEngine(t, "basic"), in)
	if !bytes.Equal(a, b) || ra.withoutFile() != rb.withoutFile() {
		t.Error("two engines with one key give different outputs")
	}
	other, _ := NewKey(bytes.Repeat([]byte{1}, KeySize))
	p, _ := Preset("basic")
	e2, _ := NewEngine(p, other)
	_, _, rc := deidBytes(t, e2, in)
	if rc.PatientPseudonym == ra.PatientPseudonym || rc.SOPInstanceUID == ra.SOPInstanceUID {
		t.Error("another key gives the same pseudonyms")
	}
}

// withoutFile drops the header pointer so results compare by value.
func (r Result) withoutFile() Result {
	r.File = nil
	return r
}

func TestStudyUIDMapping(t *testing.T) {
	e := testEngine(t, "basic")
	f := ctFile(t)
	orig := f.Dataset.UID(tagStudyInstanceUID)
	res, err := e.Apply(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.StudyUID(orig); got != res.StudyUID || got == orig {
		t.Fatalf("StudyUID(%s) = %s, de-identified object has %s", orig, got, res.StudyUID)
	}
}

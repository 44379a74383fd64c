package deid

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// testScrubber is what ctFile's identifying values give.
func testScrubber() *scrubber {
	s := &scrubber{}
	s.addName("Zwiebelmann^Hildegard^M")
	s.addName("Brenner^Walburga")
	s.addName("Yamada^Taro=山田^太郎")
	s.addID("PID-48213377")
	s.addID("ACC7731942")
	s.addID("X7Q")
	s.addDate("20230615")
	s.addTime("101500")
	return s
}

func TestScrubDescriptions(t *testing.T) {
	s := testScrubber()
	var st scrubState
	for _, c := range []struct{ in, want string }{
		// Names in any order, case and with any separator.
		{"CT THORAX Zwiebelmann", "CT THORAX ***"},
		{"zwiebelmann^hildegard T2", "*** T2"},
		{"T2 Hildegard Zwiebelmann", "T2 ***"},
		{"T2 ZWIEBELMANN, HILDEGARD post", "T2 *** post"},
		{"T2 Zwiebelmann.Hildegard", "T2 ***"},
		{"T2 Hildegard-Zwiebelmann", "T2 ***"},
		{"T2 H. Zwiebelmann", "T2 ***"},
		{"T2 Zwiebelmann^Hildegard^M", "T2 ***"},
		{"Dr Brenner req", "Dr *** req"},
		{"WALBURGA ax", "*** ax"},
		{"T1 山田太郎", "T1 ***"},
		// A short part alone stays: it would match words by chance.
		{"M SAG", "M SAG"},
		// IDs, also without their separators, and dates and times.
		{"ref PID-48213377", "ref ***"},
		{"ref PID48213377 x", "ref *** x"},
		{"acc7731942", "***"},
		{"id X7Q ok", "id *** ok"},
		{"X7QA", "X7QA"},
		{"2023-06-15 T1", "*** T1"},
		{"15.06.2023 T1", "*** T1"},
		{"T1 15 06 2023", "T1 ***"},
		{"T1 20230615", "T1 ***"},
		{"T1 at 10:15", "T1 at ***"},
		// Generic dates and long digit runs of other objects.
		{"prior 2019/11/03", "prior ***"},
		{"prior 03/11/19 T1", "prior *** T1"},
		{"prior 3 Nov 2019", "prior ***"},
		{"prior November 3, 2019", "prior ***"},
		{"MRN 55120931", "MRN ***"},
		// What scanners write stays as it is.
		{"DWI b1000 AX", "DWI b1000 AX"},
		{"T1 FL3D 1.5mm 3/4", "T1 FL3D 1.5mm 3/4"},
		{"SE 2.0 x 2.0", "SE 2.0 x 2.0"},
		{"ep2d_diff_3scan_trace_p2", "ep2d_diff_3scan_trace_p2"},
		{"", ""},
	} {
		got, changed := s.scrub(&st, c.in)
		if got != c.want {
			t.Errorf("scrub(%q) = %q, want %q", c.in, got, c.want)
		}
		if changed != (c.in != c.want) {
			t.Errorf("scrub(%q) reports changed=%v", c.in, changed)
		}
	}
}

// TestCleanDescriptors: under eucaim the series description is kept with
// the patient's name taken out (not refused by the leak check, as it was
// before the option), the option is recorded, and narrative stays out.
func TestCleanDescriptors(t *testing.T) {
	e := testEngine(t, "eucaim")
	f := ctFile(t)
	f.Dataset.SetStrings(0x0008103E, dicom.LO, "T2 AX Zwiebelmann Hildegard 2023-06-15")
	f.Dataset.SetStrings(0x00181030, dicom.LO, "ONCO CHEST Brenner")      // Protocol Name
	f.Dataset.SetStrings(0x001021B0, dicom.LT, "Zwiebelmann had surgery") // Additional Patient History
	out, raw, _ := deidBytes(t, e, encodeFile(t, f))
	ds := &out.Dataset
	if v, _ := ds.String(0x0008103E); v != "T2 AX ***" {
		t.Errorf("series description %q, want %q", v, "T2 AX ***")
	}
	if v, _ := ds.String(0x00181030); v != "ONCO CHEST ***" {
		t.Errorf("protocol name %q", v)
	}
	if ds.Has(0x001021B0) || ds.Has(0x00081030) {
		t.Errorf("narrative or the study description kept")
	}
	if !hasMethodCode(ds, "113105") {
		t.Errorf("Clean Descriptors (113105) not recorded")
	}
	for _, s := range []string{"Zwiebelmann", "ZWIEBELMANN", "Brenner", "Hildegard"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("output holds %q", s)
		}
	}
	// Without the option the kept description is refused as a leak: the
	// leak check is still the last guard.
	p := e.Policy()
	p.Options = []string{RetainPatientCharacteristics.String(), RetainDeviceIdentity.String(), RetainLongitudinalModifiedDates.String()}
	e2, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e2.Rewrite(&bytes.Buffer{}, bytes.NewReader(encodeFile(t, f)), dicom.ReadOptions{})
	var rj *Rejection
	if !errors.As(err, &rj) || rj.Code != "leak" {
		t.Fatalf("without clean-descriptors: %v, want a leak rejection", err)
	}
}

// TestCleanDescriptorsCohort: the project's own synthetic objects, which
// carry the patient's and the referring physician's names in their
// descriptions as scanners do, pass the eucaim policy; only those with
// text in their pixels are refused.
func TestCleanDescriptorsCohort(t *testing.T) {
	dir := t.TempDir()
	m, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := testEngine(t, "eucaim")
	rejected := map[string]int{}
	scrubbed := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || filepath.Ext(p) != ".dcm" {
			return err
		}
		in, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		_, err = e.Rewrite(&out, bytes.NewReader(in), dicom.ReadOptions{})
		var rj *Rejection
		if errors.As(err, &rj) {
			rejected[rj.Code]++
			return nil
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if bytes.Contains(out.Bytes(), []byte(scrubMarker)) {
			scrubbed++
		}
		return nil
	})
	if rejected["leak"] != 0 || rejected["burned-in-annotation"]+rejected["pixel-text-risk"] != len(m.Risky) {
		t.Errorf("rejected %v; want no leak and %d for pixel text", rejected, len(m.Risky))
	}
	if scrubbed == 0 {
		t.Errorf("no description was scrubbed: the cohort no longer tests the option")
	}
	t.Logf("%d objects, %d scrubbed, rejected %v", m.Instances, scrubbed, rejected)
}

// BenchmarkScrub is what the option costs per object, on top of the leak
// check's collection of the object's values: the scrubber's part of it,
// and scrubbing two typical series descriptions.
func BenchmarkScrub(b *testing.B) {
	e := testEngine(b, "eucaim")
	f := ctFile(b)
	ds := &f.Dataset
	var st scrubState
	b.ReportAllocs()
	for b.Loop() {
		s := &scrubber{}
		e.collect(ds, false, s)
		if v, _ := s.scrub(&st, "T2 TSE AX Zwiebelmann^Hildegard 2023-06-15"); !strings.HasSuffix(v, "***") {
			b.Fatal(v)
		}
		s.scrub(&st, "DWI b1000 AX")
	}
}

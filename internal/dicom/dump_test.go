package dicom_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

var updateDump = flag.Bool("update-dump", false, "rewrite the golden dumps in testdata/dump")

func dump(t *testing.T, f *dicom.File, opts dicom.DumpOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := dicom.Dump(&b, f, opts); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return b.String()
}

// lineWith returns the first line of out that starts, once its
// indentation is removed, with prefix and contains each of parts.
func lineWith(out, prefix string, parts ...string) (string, bool) {
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(strings.TrimLeft(l, " "), prefix) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return l, true
		}
	}
	return "", false
}

func TestDumpElements(t *testing.T) {
	t.Parallel()
	f := &dicom.File{Syntax: dicom.Syntax{UID: dicom.ExplicitVRLittleEndian}}
	ds := &f.Dataset
	ds.Set(raw(dicom.TagSpecificCharacterSet, dicom.CS, "ISO_IR 192"))
	ds.Set(raw(tagImageType, dicom.CS, `ORIGINAL\PRIMARY\AXIAL `))
	ds.Set(raw(tagStudyDescription, dicom.LO, strings.Repeat("é", 100)))
	ds.Set(raw(tagImageComments, dicom.LT, "line one\r\nline two"))
	ds.Set(raw(tagPatientName, dicom.PN, "Yamada^Tarou=山田^太郎"))
	ds.Set(raw(tagInstitutionName, dicom.LO, ""))
	ds.Set(raw(tagRows, dicom.US, "\x00\x02\x01\x00"))
	ds.Set(raw(tagFrameIncrement, dicom.AT, "\x18\x00\x63\x10\x54\x00\x10\x00"))
	ds.Set(raw(0x00189217, dicom.FD, "\x00\x00\x00\x00\x00\x00\x04\x40"))
	ds.Set(raw(0x00090010, dicom.LO, "ACME 1.0"))
	ds.Set(raw(0x00091001, dicom.UN, "\x01\x02\x03"))
	ds.Set(raw(0x00091002, dicom.OB, strings.Repeat("\xAB", 2000)))
	ds.Set(raw(0x00280000, dicom.UL, "\x04\x00\x00\x00"))
	item := dicom.NewItem()
	item.Set(raw(tagRefSOPInstance, dicom.UI, "1.2.3\x00"))
	ds.SetSequence(tagReferencedSeries, item)
	ds.Set(dicom.Element{Tag: dicom.TagPixelData, VR: dicom.OB, Length: dicom.UndefinedLength,
		Fragments: &dicom.Fragments{Items: [][]byte{{0xFF, 0xD8}, bytes.Repeat([]byte{7}, 300)}}})

	out := dump(t, f, dicom.DumpOptions{})
	checks := []struct {
		prefix string
		parts  []string
	}{
		{"# Dataset:", []string{"1.2.840.10008.1.2.1 (Explicit VR Little Endian)"}},
		{"(0008,0005) CS [ISO_IR 192]", []string{"#   10, 1 SpecificCharacterSet"}},
		{`(0008,0008) CS [ORIGINAL\PRIMARY\AXIAL]`, []string{"#   23, 3 ImageType"}},
		{"(0008,1030) LO [" + strings.Repeat("é", 64) + "...]", []string{"#  200, 1 StudyDescription"}},
		{"(0020,4000) LT [line one<0D><0A>line two]", []string{"ImageComments"}},
		{"(0010,0010) PN [Yamada^Tarou=山田^太郎]", []string{", 1 PatientName"}},
		{"(0008,0080) LO (no value)", []string{"#    0, 0 InstitutionName"}},
		{`(0028,0010) US 512\1`, []string{"#    4, 2 Rows"}},
		{`(0028,0009) AT (0018,1063)\(0054,0010)`, []string{", 2 FrameIncrementPointer"}},
		{"(0018,9217) FD 2.5", []string{"#    8, 1 "}},
		{"(0009,0010) LO [ACME 1.0]", []string{"PrivateCreator"}},
		{`(0009,1001) UN 01\02\03`, []string{"#    3, 1 Private[ACME 1.0]"}},
		{`(0009,1002) OB ab\ab\ab`, []string{"...(2000 bytes)", "# 2000, 1 Private[ACME 1.0]"}},
		{"(0028,0000) UL 4", []string{"GroupLength"}},
		{"(0008,1115) SQ (Sequence, 1 item, undefined length)", []string{"#  u/l, 1 ReferencedSeriesSequence"}},
		{"(FFFE,E000) na (Item 1, 1 element, undefined length)", []string{"#  u/l, 1 Item"}},
		{"(0008,1155) UI [1.2.3]", []string{"#    6, 1 ReferencedSOPInstanceUID"}},
		{"(FFFE,E00D) na (Item Delimitation)", nil},
		{"(FFFE,E0DD) na (Sequence Delimitation)", nil},
		{"(7FE0,0010) OB (Encapsulated, 2 fragments, 302 bytes)", []string{"#  u/l, 1 PixelData"}},
		{"(FFFE,E000) pi (Basic Offset Table, empty)", []string{"#    0, 1 Item"}},
		{`(FFFE,E000) pi (Fragment 1) ff\d8`, []string{"#    2, 1 Item"}},
		{`(FFFE,E000) pi (Fragment 2) 07\07`, []string{"...(300 bytes)", "#  300, 1 Item"}},
	}
	missing := false
	for _, c := range checks {
		if _, ok := lineWith(out, c.prefix, c.parts...); !ok {
			t.Errorf("no line %q with %q", c.prefix, c.parts)
			missing = true
		}
	}
	if missing {
		t.Logf("dump:\n%s", out)
	}
	// The item content is indented one level deeper than the item.
	if l, _ := lineWith(out, "(0008,1155)"); !strings.HasPrefix(l, "    (0008,1155)") {
		t.Errorf("item element not indented by 4: %q", l)
	}
	if l, _ := lineWith(out, "(FFFE,E000) na"); !strings.HasPrefix(l, "  (FFFE,E000)") {
		t.Errorf("item not indented by 2: %q", l)
	}

	full := dump(t, f, dicom.DumpOptions{Full: true})
	if _, ok := lineWith(full, "(0008,1030) LO ["+strings.Repeat("é", 100)+"]"); !ok {
		t.Errorf("Full did not show the whole value:\n%s", full)
	}
	if _, ok := lineWith(full, `(0009,1002) OB `+strings.Repeat(`ab\`, 1999)+"ab "); !ok {
		t.Errorf("Full did not show every byte")
	}
	narrow := dump(t, f, dicom.DumpOptions{Width: 5})
	if _, ok := lineWith(narrow, "(0008,1030) LO [ééééé...]"); !ok {
		t.Errorf("Width 5 not honoured:\n%s", narrow)
	}
	// One line per element: no value breaks a line.
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(strings.TrimLeft(l, " "), "(") && !strings.HasPrefix(l, "# ") {
			t.Errorf("stray line %q", l)
		}
	}
}

func TestDumpBigEndianAndMeta(t *testing.T) {
	t.Parallel()
	f, err := dicom.Parse(bigEndianFile(t), dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := dump(t, f, dicom.DumpOptions{})
	for _, want := range []string{
		"# DICOM file: 128-byte preamble",
		"# File meta information (group 0002)",
		"(0002,0010) UI [1.2.840.10008.1.2.2]",
		"# Dataset: 1.2.840.10008.1.2.2 (Explicit VR Big Endian (retired))",
		`(7FE0,0010) OW 1234\abcd`,
		`(0028,0010) US 512\1`,
		"(0028,0106) SS -2",
		"(0018,9219) SL -1",
		"(0018,9218) FL -0.75",
		`(0028,0009) AT (0018,1063)\(0054,0010)`,
	} {
		if _, ok := lineWith(out, want); !ok {
			t.Errorf("no line %q in:\n%s", want, out)
		}
	}
	noMeta := dump(t, f, dicom.DumpOptions{NoMeta: true})
	if strings.Contains(noMeta, "(0002,") || strings.Contains(noMeta, "preamble") {
		t.Errorf("NoMeta still shows the meta information:\n%s", noMeta)
	}

	// Pixel data left unread by a header-only parse.
	h, err := dicom.Parse(bigEndianFile(t), dicom.ReadOptions{StopAtPixelData: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lineWith(dump(t, h, dicom.DumpOptions{}), "(7FE0,0010) OW (not loaded)", "#    4, 1 PixelData"); !ok {
		t.Errorf("unread pixel data not shown as such:\n%s", dump(t, h, dicom.DumpOptions{}))
	}
}

// goldenDumps are corpus files whose dumps are kept in testdata/dump:
// nested sequences (implicit VR), a character set per item, and
// encapsulated pixel data.
var goldenDumps = []string{
	"test_files/rtplan.dcm",
	"charset_files/chrSQEncoding.dcm",
	"test_files/JPEG2000.dcm",
}

// TestDumpGolden compares the dumps of a few corpus files with the ones
// kept under testdata/dump; run with -update-dump to rewrite them after a
// deliberate change of format.
func TestDumpGolden(t *testing.T) {
	t.Parallel()
	_, err := os.Stat(filepath.Join(oracleData, goldenDumps[0]))
	needOracle(t, err == nil, "pydicom's test files are missing from %s (Debian package python3-pydicom)", oracleData)
	for _, rel := range goldenDumps {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			f, err := dicom.ReadFile(filepath.Join(oracleData, rel), dicom.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := dump(t, f, dicom.DumpOptions{})
			golden := filepath.Join("testdata", "dump", filepath.Base(rel)+".txt")
			if *updateDump {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestDumpGolden -update-dump to create it)", err)
			}
			if got != string(want) {
				gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := 0; i < max(len(gl), len(wl)); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("%s differs from %s at line %d:\ngot  %q\nwant %q", rel, golden, i+1, g, w)
					}
				}
			}
		})
	}
}

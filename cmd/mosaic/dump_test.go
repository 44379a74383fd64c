package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// runDump runs the mosaic command line and returns the exit status and
// what was printed.
func runDump(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// writeTestFile writes a small DICOM file whose patient is name and
// returns its path.
func writeTestFile(t *testing.T, dir, base, name string) string {
	t.Helper()
	f := &dicom.File{Syntax: dicom.Syntax{UID: dicom.ExplicitVRLittleEndian}}
	ds := &f.Dataset
	for _, s := range []struct {
		tag dicom.Tag
		vr  dicom.VR
		v   string
	}{
		{dicom.TagSpecificCharacterSet, dicom.CS, "ISO_IR 192"},
		{dicom.TagSOPClassUID, dicom.UI, "1.2.840.10008.5.1.4.1.1.7"},
		{dicom.TagSOPInstanceUID, dicom.UI, "1.2.3.4." + base},
		{0x00081030, dicom.LO, strings.Repeat("long description ", 10)},
		{0x00100010, dicom.PN, name},
	} {
		if err := ds.SetStrings(s.tag, s.vr, s.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := ds.SetInts(0x00280010, dicom.US, 2); err != nil {
		t.Fatal(err)
	}
	ds.SetBytes(dicom.TagPixelData, dicom.OB, bytes.Repeat([]byte{0x5A}, 2048))
	var b bytes.Buffer
	if err := dicom.WriteFile(&b, f); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, base+".dcm")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDumpText(t *testing.T) {
	dir := t.TempDir()
	a := writeTestFile(t, dir, "a", "Yamada^Tarou=山田^太郎")

	code, out, errOut := runDump(t, "dump", a)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"# File meta information (group 0002)",
		"(0002,0010) UI [1.2.840.10008.1.2.1]",
		"(0010,0010) PN [Yamada^Tarou=山田^太郎]",
		"(0028,0010) US 2",
		"(0008,1030) LO [long description long description long description long descript...]",
		"(7FE0,0010) OB 5a\\5a",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "# "+a) {
		t.Errorf("a single file got a file header:\n%s", out)
	}

	_, full, _ := runDump(t, "dump", "--full", a)
	if !strings.Contains(full, "(0008,1030) LO ["+strings.TrimSpace(strings.Repeat("long description ", 10))+"]") {
		t.Errorf("--full did not show the whole value:\n%s", full)
	}
	if !strings.Contains(full, strings.Repeat(`5a\`, 2047)+"5a ") {
		t.Errorf("--full did not show every byte of the pixel data")
	}
}

func TestDumpSeveralFilesAndErrors(t *testing.T) {
	dir := t.TempDir()
	a := writeTestFile(t, dir, "a", "Doe^Jane")
	b := writeTestFile(t, dir, "b", "Roe^Richard")
	data, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.dcm")
	if err := os.WriteFile(truncated, data[:len(data)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a DICOM file at all, just some text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.dcm")

	code, out, errOut := runDump(t, "dump", a, truncated, text, missing, b)
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	// The readable files are dumped, in order, each under its header.
	ia, ib := strings.Index(out, "# "+a+"\n"), strings.Index(out, "# "+b+"\n")
	if ia < 0 || ib < ia {
		t.Errorf("file headers missing or out of order:\n%s", out)
	}
	if !strings.Contains(out[ia:ib], "[Doe^Jane]") || !strings.Contains(out[ib:], "[Roe^Richard]") {
		t.Errorf("dumps not under their headers:\n%s", out)
	}
	for _, bad := range []string{truncated, text, missing} {
		if strings.Contains(out, "# "+bad) {
			t.Errorf("unreadable %s got a header on stdout", bad)
		}
	}
	// Each failure names the file and the decoder's cause, with the
	// offset and tag.
	for _, want := range []string{
		"mosaic: dump " + truncated + ": dicom: read (7FE0,0010) at offset ",
		"value length exceeds the data that remains",
		"mosaic: dump " + text + ": dicom: read at offset 0: not a DICOM stream",
		"mosaic: dump " + missing + ": open " + missing,
		"mosaic: dump: 3 of 5 files could not be read",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestDumpJSON(t *testing.T) {
	dir := t.TempDir()
	a := writeTestFile(t, dir, "a", "Yamada^Tarou=山田^太郎")
	b := writeTestFile(t, dir, "b", "Roe^Richard")
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("plain text"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runDump(t, "dump", "--json", a)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var one map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &one); err != nil {
		t.Fatalf("one file: not a JSON object: %v\n%s", err, out)
	}
	if _, ok := one["00020010"]; ok {
		t.Errorf("JSON holds the file meta information")
	}
	pn, _ := json.Marshal(one["00100010"])
	if string(pn) != `{"Value":[{"Alphabetic":"Yamada^Tarou","Ideographic":"山田^太郎"}],"vr":"PN"}` {
		t.Errorf("PatientName %s", pn)
	}
	if got := one["7FE00010"]["BulkDataURI"]; got != "urn:mosaic:bulk:length=2048" {
		t.Errorf("2048-byte pixel data: BulkDataURI %v", got)
	}

	// One file that cannot be read: nothing on stdout.
	code, out, errOut = runDump(t, "dump", "--json", text)
	if code != exitFailure || out != "" || !strings.Contains(errOut, text) {
		t.Errorf("unreadable file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Several files: an array, in order, without the unreadable one.
	code, out, errOut = runDump(t, "dump", "--json", a, text, b)
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(errOut, "mosaic: dump "+text+": dicom: read at offset 0: not a DICOM stream") {
		t.Errorf("stderr %q", errOut)
	}
	var many []map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &many); err != nil {
		t.Fatalf("several files: not a JSON array: %v\n%s", err, out)
	}
	if len(many) != 2 {
		t.Fatalf("%d objects, want 2", len(many))
	}
	if v, _ := json.Marshal(many[1]["00100010"]["Value"]); string(v) != `[{"Alphabetic":"Roe^Richard"}]` {
		t.Errorf("second file's PatientName %s", v)
	}

	// Bulk data threshold.
	for _, tt := range []struct {
		flag, key string
	}{
		{"--bulk-threshold=4096", "InlineBinary"},
		{"--bulk-threshold=-1", "InlineBinary"},
		{"--bulk-threshold=2047", "BulkDataURI"},
		{"--bulk-threshold=0", "BulkDataURI"},
	} {
		_, out, _ := runDump(t, "dump", "--json", tt.flag, a)
		var obj map[string]map[string]any
		if err := json.Unmarshal([]byte(out), &obj); err != nil {
			t.Fatalf("%s: %v", tt.flag, err)
		}
		if _, ok := obj["7FE00010"][tt.key]; !ok {
			t.Errorf("%s: pixel data %v, want %s", tt.flag, obj["7FE00010"], tt.key)
		}
	}
	_, out, _ = runDump(t, "dump", "--json", "--bulk-threshold=0", a)
	if !strings.Contains(out, `"00100010":{"vr":"PN"`) {
		t.Errorf("compact output expected without --indent:\n%.300s", out)
	}
	_, out, _ = runDump(t, "dump", "--json", "--indent", a)
	if !strings.Contains(out, "\n  \"00100010\": {\n    \"vr\": \"PN\"") || !json.Valid([]byte(out)) {
		t.Errorf("--indent output:\n%.300s", out)
	}
}

func TestDumpUsage(t *testing.T) {
	for _, args := range [][]string{
		{"dump"},
		{"dump", "--no-such-flag", "x.dcm"},
		{"dump", "--bulk-threshold=-2", "x.dcm"},
		{"dump", "--bulk-threshold=lots", "x.dcm"},
	} {
		code, out, errOut := runDump(t, args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
		if out != "" {
			t.Errorf("%q: printed %q", args, out)
		}
		if !strings.HasPrefix(errOut, "mosaic: ") {
			t.Errorf("%q: stderr %q", args, errOut)
		}
	}
	code, out, _ := runDump(t, "dump", "--help")
	if code != exitOK {
		t.Errorf("--help: exit %d", code)
	}
	for _, want := range []string{"--json", "--full", "--bulk-threshold", "JSON array", "# FILE", "urn:mosaic:bulk:length=N"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}

package deid_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// fuzzLimits keep one execution cheap whatever the mutated lengths say.
var fuzzLimits = dicom.ReadOptions{MaxValueLength: 4 << 20, MaxInflated: 8 << 20, MaxDepth: 32}

// markerPrefix starts every marker: no engine output (pseudonyms, dummy
// values, conformance codes) contains it, and no seed does.
const markerPrefix = "zqx"

// markerFrom makes a marker from the fuzzer's string: the prefix, then its
// letters and digits, at least 8 characters in all and at most 40.
func markerFrom(s string) string {
	var b strings.Builder
	b.WriteString(markerPrefix)
	for i := 0; i < len(s) && b.Len() < 40; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	for b.Len() < 8 {
		b.WriteByte("markerfill"[b.Len()%10])
	}
	return b.String()
}

// injectMarker writes m into identifying attributes of every kind: names,
// IDs, an address, an institution, a description, values in nested
// sequence items, a private element and a private element after the pixel
// data. None of them is kept by any preset. It reports false when the
// dataset cannot take the values.
func injectMarker(f *dicom.File, m string) bool {
	var err error
	b := builder{ds: &f.Dataset, err: &err}
	b.str("PatientName", m+"^Fuzz")
	b.str("PatientID", m)
	b.str("PatientAddress", "1 "+m+" Road")
	b.str("InstitutionName", m+" Clinic")
	b.str("ReferringPhysicianName", "Dr"+m+"^Anna")
	b.str("StudyDescription", "Exam of "+m)
	if o := b.items("OtherPatientIDsSequence", 1); o != nil {
		o[0].str("PatientID", strings.ToUpper(m))
		o[0].str("IssuerOfPatientID", "Registry "+m)
	}
	if r := b.items("RequestAttributesSequence", 1); r != nil {
		r[0].str("RequestedProcedureID", m)
		r[0].str("RequestedProcedureDescription", "Procedure "+m)
		r[0].str("ScheduledPerformingPhysicianName", m+"^Phys")
	}
	// Sequences the engine descends into rather than removing whole: a
	// reference (its UIDs replaced) and a report's content tree (values
	// replaced by dummies), each with a name and free text inside.
	if r := b.items("ReferencedImageSequence", 1); r != nil {
		r[0].str("ReferencedSOPClassUID", "1.2.840.10008.5.1.4.1.1.2")
		r[0].str("ReferencedSOPInstanceUID", "1.2.3.4.5.6.7")
		r[0].str("PersonName", m+"^Ref")
		r[0].str("TextValue", "see "+m)
	}
	if c := b.items("ContentSequence", 2); c != nil {
		c[0].str("RelationshipType", "CONTAINS")
		c[0].str("ValueType", "TEXT")
		c[0].str("TextValue", "Findings for "+m)
		c[1].str("RelationshipType", "HAS OBS CONTEXT")
		c[1].str("ValueType", "PNAME")
		c[1].str("PersonName", m+"^Observer")
	}
	// A private block in a group no seed uses, and another after the pixel
	// data (group 7FE1), which the engine sees only once the pixel data
	// has been streamed.
	for _, p := range []struct {
		group   uint16
		creator string
	}{{0x0011, "FUZZ VENDOR"}, {0x7FE1, "FUZZ TRAILER"}} {
		if err == nil {
			err = f.Dataset.SetStrings(dicom.NewTag(p.group, 0x0010), dicom.LO, p.creator)
		}
		if err == nil {
			err = f.Dataset.SetStrings(dicom.NewTag(p.group, 0x1001), dicom.LO, m)
		}
	}
	return err == nil
}

// containsMarker reports whether hay (already ASCII-folded by scanBytes)
// holds the marker.
func containsMarker(hay []byte, m string) bool {
	return bytes.Contains(hay, lowerASCII([]byte(m)))
}

// fuzzing reports whether the test binary runs with -fuzz (rather than
// running the seed corpus as a unit test).
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// fuzzSeeds returns small inputs: the first instance of every series of a
// one-patient cohort with a small CT matrix, and pydicom's readable test
// files up to 32 KiB.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	dir := f.TempDir()
	if _, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 1, Seed: 5, CTMatrix: synth.MinCTMatrix, Workers: 1}); err != nil {
		f.Fatal(err)
	}
	var paths []string
	filepath.WalkDir(filepath.Join(dir, synth.DICOMDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(p) == "0001.dcm" {
			paths = append(paths, p)
		}
		return err
	})
	sort.Strings(paths)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) <= 64<<10 {
			seeds = append(seeds, b)
		}
	}
	if len(seeds) == 0 {
		f.Fatal("no synth seed")
	}
	for _, d := range pydicomDirs {
		filepath.WalkDir(filepath.Join(pydicomData, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(pydicomData, p)
			if codecUnreadable[filepath.ToSlash(rel)] != "" {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && len(b) <= 32<<10 {
				seeds = append(seeds, b)
			}
			return nil
		})
	}
	return seeds
}

// FuzzDeidMarkers injects a marker into identifying attributes of an
// input (possibly mutated beyond recognition by the fuzzer), runs every
// preset, and checks that the engine never panics, fails only with a
// *deid.Rejection or a codec *dicom.Error, writes nothing for a rejected
// object, and never lets the marker through: no output contains it
// (pixel data aside).
func FuzzDeidMarkers(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		f.Add(s, []string{"Marker01", "xK9qLm2Z", "leak4711test"}[i%3])
	}
	var engines []*deid.Engine
	for _, name := range deid.Presets {
		engines = append(engines, newEngine(f, presetPolicy(f, name), siteKey))
	}
	run := func(t *testing.T, e *deid.Engine, in []byte, what string) (out []byte, ok bool) {
		t.Helper()
		var buf bytes.Buffer
		_, err := e.Rewrite(&buf, bytes.NewReader(in), fuzzLimits)
		var rj *deid.Rejection
		var de *dicom.Error
		switch {
		case err == nil:
			return buf.Bytes(), true
		case errors.As(err, &rj):
			if buf.Len() != 0 {
				t.Fatalf("%s %s: rejected (%s) but %d bytes written", e.Policy().Name, what, rj.Code, buf.Len())
			}
		case errors.As(err, &de):
		default:
			t.Fatalf("%s %s: error is neither a rejection nor a codec error: %T %v", e.Policy().Name, what, err, err)
		}
		return nil, false
	}
	f.Fuzz(func(t *testing.T, data []byte, marker string) {
		m := markerFrom(marker)
		if containsMarker(lowerASCII(data), m) {
			return // the marker must come from the injection only
		}
		// One preset per execution, chosen by the marker, keeps each
		// execution cheap; the seeds run every preset.
		engines := engines
		if fuzzing() {
			e := engines[len(marker)%len(engines)]
			engines = []*deid.Engine{e}
		}
		// The input as the fuzzer made it.
		for _, e := range engines {
			run(t, e, data, "raw input")
		}
		file, err := dicom.Parse(data, fuzzLimits)
		if err != nil || !injectMarker(file, m) {
			return
		}
		if file.Syntax.Deflated {
			// Written inflated, so that the byte scan sees every value.
			file.Syntax = dicom.Syntax{UID: dicom.ExplicitVRLittleEndian}
		}
		var buf bytes.Buffer
		if err := dicom.WriteFile(&buf, file); err != nil {
			return
		}
		in := buf.Bytes()
		if !containsMarker(scanBytes(in), m) {
			t.Fatalf("the marker %q was not written into the input", m)
		}
		for _, e := range engines {
			out, ok := run(t, e, in, "marked input")
			if ok && containsMarker(scanBytes(out), m) {
				i := bytes.Index(scanBytes(out), lowerASCII([]byte(m)))
				lo, hi := max(0, i-48), min(len(out), i+len(m)+16)
				t.Fatalf("%s: marker %q survives in the output at offset %d: %q", e.Policy().Name, m, i, out[lo:hi])
			}
		}
	})
}

// TestConformanceInjectedMarkers runs the check of FuzzDeidMarkers over
// the whole corpus (the first instance of each synth series), with one
// marker, and counts what the engine made of the marked objects.
func TestConformanceInjectedMarkers(t *testing.T) {
	fx := getFixture(t)
	const m = markerPrefix + "Injected42"
	seen := map[string]bool{}
	var marked [][]byte
	var names []string
	for _, o := range fx.objs {
		if o.source == "synth" {
			if seen[o.series] {
				continue
			}
			seen[o.series] = true
		}
		file, err := dicom.Parse(o.in, fuzzLimits)
		if err != nil {
			continue
		}
		if !injectMarker(file, m) {
			t.Errorf("%s: cannot inject the marker", o.name)
			continue
		}
		if file.Syntax.Deflated {
			file.Syntax = dicom.Syntax{UID: dicom.ExplicitVRLittleEndian}
		}
		var buf bytes.Buffer
		if err := dicom.WriteFile(&buf, file); err != nil {
			t.Errorf("%s: write: %v", o.name, err)
			continue
		}
		if _, err := dicom.Parse(buf.Bytes(), dicom.ReadOptions{}); err != nil {
			// Not the engine's doing: the codec wrote what it cannot read.
			t.Logf("%s: the codec cannot read back the marked object it wrote (%v); left out", o.name, err)
			continue
		}
		marked = append(marked, buf.Bytes())
		names = append(names, o.name)
	}
	for _, preset := range deid.Presets {
		e := newEngine(t, presetPolicy(t, preset), siteKey)
		counts := map[string]int{}
		for k, in := range marked {
			oc := rewrite(e, in)
			counts[oc.key()]++
			switch {
			case oc.ok():
				if containsMarker(scanBytes(oc.out), m) {
					t.Errorf("%s %s: the injected marker survives in the output", preset, names[k])
				}
			case oc.rej == nil:
				t.Errorf("%s %s: neither ok nor rejected: %v", preset, names[k], oc.err)
			case oc.rej.Code == "leak":
				t.Logf("%s %s: rejected: %s", preset, names[k], oc.rej.Reason)
			}
		}
		t.Logf("%s: %d marked objects: %v", preset, len(marked), counts)
	}
}

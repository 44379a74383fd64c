package dicom

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// pydicomTestFiles is where Debian's python3-pydicom keeps its test data.
const pydicomData = "/usr/lib/python3/dist-packages/pydicom/data"

// addSeeds gives a fuzz target valid files of every encoding the codec
// supports, built here, plus pydicom's small test files when installed.
func addSeeds(f *testing.F) {
	for _, syn := range []Syntax{
		{UID: ExplicitVRLittleEndian},
		{UID: ImplicitVRLittleEndian, Implicit: true},
		{UID: ExplicitVRBigEndian, BigEndian: true},
		{UID: DeflatedExplicitVRLittleEndian, Deflated: true},
	} {
		f.Add(encode(f, sampleFile(f, syn)))
	}
	enc := sampleFile(f, Syntax{UID: "1.2.840.10008.1.2.4.50", Encapsulated: true})
	enc.Dataset.Set(Element{Tag: TagPixelData, VR: OB, Length: UndefinedLength,
		Fragments: &Fragments{OffsetTable: []byte{0, 0, 0, 0}, Items: [][]byte{{0xFF, 0xD8, 1, 2}, {3, 0xFF, 0xD9, 0}}}})
	f.Add(encode(f, enc))
	for _, dir := range []string{"test_files", "charset_files"} {
		paths, _ := filepath.Glob(filepath.Join(pydicomData, dir, "*.dcm"))
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
}

// FuzzRead checks that the reader never panics, reports every failure as
// a *dicom.Error, and decodes the same way from memory and from a stream.
func FuzzRead(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := ReadOptions{MaxInflated: 8 << 20, MaxValueLength: 16 << 20}
		mf, merr := Parse(data, opts)
		sf, serr := NewDecoder(unsizedReader{bytes.NewReader(data)}, opts).ReadFile()
		for _, err := range []error{merr, serr} {
			var de *Error
			if err != nil && !errors.As(err, &de) {
				t.Fatalf("error %v is not a *dicom.Error", err)
			}
		}
		if (merr == nil) != (serr == nil) {
			t.Fatalf("memory and stream disagree: %v vs %v", merr, serr)
		}
		if merr != nil {
			return
		}
		if len(mf.Dataset.Elements) != len(sf.Dataset.Elements) {
			t.Fatalf("memory read %d elements, stream %d", len(mf.Dataset.Elements), len(sf.Dataset.Elements))
		}
		for i := range mf.Dataset.Elements {
			if !mf.Dataset.Elements[i].Equal(&sf.Dataset.Elements[i]) {
				t.Fatalf("element %s differs between memory and stream", mf.Dataset.Elements[i].Tag)
			}
		}
		// Typed access never panics either.
		mf.Dataset.Walk(func(_ []Tag, ds *Dataset, e *Element) bool {
			switch {
			case e.VR.IsText():
				ds.Strings(e)
			case e.VR.IsBinaryNumber():
				ds.Ints(e)
				ds.Floats(e)
			}
			return true
		})
	})
}

// FuzzReadWrite checks that whatever the reader accepts, the writer writes
// back so that reading and writing again is stable, and that the
// streaming rewrite produces the same bytes as the in-memory one.
func FuzzReadWrite(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := ReadOptions{MaxInflated: 8 << 20, MaxValueLength: 16 << 20}
		file, err := Parse(data, opts)
		if err != nil {
			return
		}
		var first bytes.Buffer
		if err := WriteFile(&first, file); err != nil {
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("write error %v is not a *dicom.Error", err)
			}
			return
		}
		again, err := Parse(first.Bytes(), opts)
		if err != nil {
			t.Fatalf("output of the writer does not read back: %v", err)
		}
		var second bytes.Buffer
		if err := WriteFile(&second, again); err != nil {
			t.Fatalf("second write: %v", err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("read-write not stable: %d then %d bytes", first.Len(), second.Len())
		}
		var streamed bytes.Buffer
		if err := Rewrite(&streamed, unsizedReader{bytes.NewReader(data)}, RewriteOptions{Read: opts}); err != nil {
			t.Fatalf("streaming rewrite failed where reading succeeded: %v", err)
		}
		if !bytes.Equal(streamed.Bytes(), first.Bytes()) {
			t.Fatalf("streaming rewrite differs from in-memory rewrite")
		}
	})
}

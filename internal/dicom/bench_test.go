package dicom_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// benchFiles generates a small cohort with 512x512 CT and returns the
// paths of its DICOM files, CT slices first.
func benchFiles(b *testing.B) (ct []string, all []string) {
	b.Helper()
	dir := b.TempDir()
	if _, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 3, Seed: 7, CTMatrix: 512}); err != nil {
		b.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".dcm" {
			return err
		}
		all = append(all, p)
		f, err := dicom.ReadFile(p, dicom.ReadOptions{StopAtPixelData: true})
		if err != nil {
			return err
		}
		if m, _ := f.Dataset.String(dicom.NewTag(0x0008, 0x0060)); m == "CT" {
			ct = append(ct, p)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(ct) == 0 {
		b.Fatal("cohort has no CT slice")
	}
	return ct, all
}

// BenchmarkRewriteCTSlice reads a 512x512 CT slice from memory and writes
// it back unchanged: the cost every pass-through of a file pays.
func BenchmarkRewriteCTSlice(b *testing.B) {
	ct, _ := benchFiles(b)
	data, err := os.ReadFile(ct[0])
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	out.Grow(len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		f, err := dicom.Parse(data, dicom.ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := dicom.WriteFile(&out, f); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), data) {
		b.Fatal("rewrite changed the file")
	}
}

// BenchmarkRewriteCTSliceStream is the same through the streaming path
// that keeps memory bounded for any image size.
func BenchmarkRewriteCTSliceStream(b *testing.B) {
	ct, _ := benchFiles(b)
	data, err := os.ReadFile(ct[0])
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	out.Grow(len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if err := dicom.Rewrite(&out, bytes.NewReader(data), dicom.RewriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), data) {
		b.Fatal("rewrite changed the file")
	}
}

// BenchmarkHeaderParseFiles opens files on disk and parses everything
// before the pixel data, as an indexer does.
func BenchmarkHeaderParseFiles(b *testing.B) {
	_, all := benchFiles(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f, err := os.Open(all[i%len(all)])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dicom.NewDecoder(f, dicom.ReadOptions{StopAtPixelData: true}).ReadFile(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "files/s")
}

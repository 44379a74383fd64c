package deid

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

// BenchmarkDeidCTSlice de-identifies a 512x512 CT slice held in memory
// with the basic and eucaim policies: the engine's own cost per object.
func BenchmarkDeidCTSlice(b *testing.B) {
	dir := b.TempDir()
	if _, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 1, Seed: 5, CTMatrix: 512}); err != nil {
		b.Fatal(err)
	}
	var data []byte
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || data != nil || filepath.Ext(p) != ".dcm" {
			return err
		}
		f, err := dicom.ReadFile(p, dicom.ReadOptions{StopAtPixelData: true})
		if err == nil {
			if m, _ := f.Dataset.String(tagModality); m == "CT" {
				data, err = os.ReadFile(p)
			}
		}
		return err
	})
	if data == nil {
		b.Fatal("no CT slice in the cohort")
	}
	// eucaim keeps descriptions and scrubs them (Clean Descriptors); the
	// same policy without the option shows what scrubbing costs.
	noClean, _ := Preset("eucaim")
	noClean.Options = noClean.Options[:len(noClean.Options)-1]
	for _, c := range []struct {
		name string
		e    *Engine
	}{{"basic", testEngine(b, "basic")}, {"eucaim", testEngine(b, "eucaim")}, {"eucaim-without-clean-descriptors", mustEngine(b, noClean)}} {
		b.Run(c.name, func(b *testing.B) {
			var out bytes.Buffer
			out.Grow(len(data))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				if _, err := c.e.Rewrite(&out, bytes.NewReader(data), dicom.ReadOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustEngine(b *testing.B, p Policy) *Engine {
	e, err := NewEngine(p, testKey(b))
	if err != nil {
		b.Fatal(err)
	}
	return e
}

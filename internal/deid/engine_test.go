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

func testKey(t testing.TB) Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testEngine(t testing.TB, preset string) *Engine {
	t.Helper()
	p, err := Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func cohort(t testing.TB, patients int) []string {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: patients, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && filepath.Ext(p) == ".dcm" {
			files = append(files, p)
		}
		return err
	})
	return files
}

func TestSmokeCohort(t *testing.T) {
	files := cohort(t, 12)
	for _, preset := range Presets {
		e := testEngine(t, preset)
		ok, rejected := 0, map[string]int{}
		for _, p := range files {
			in, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := e.Rewrite(&out, bytes.NewReader(in), dicom.ReadOptions{})
			var rj *Rejection
			if errors.As(err, &rj) {
				rejected[rj.Code]++
				if out.Len() != 0 {
					t.Fatalf("%s: rejected object wrote %d bytes", p, out.Len())
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			ok++
			if !strings.HasPrefix(res.PatientPseudonym, e.p.PatientIDPrefix) || !strings.HasPrefix(res.SOPInstanceUID, "2.25.") {
				t.Fatalf("result: %+v", res)
			}
		}
		t.Logf("%s: %d ok, rejected %v", preset, ok, rejected)
	}
}

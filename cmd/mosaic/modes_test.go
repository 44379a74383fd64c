//go:build unix

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// TestDeidOutputModes: with a umask that takes nothing away, the tree
// `mosaic deid -o` writes and the table `mosaic deid clinical -o`
// writes are for the user who ran them only.
func TestDeidOutputModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	cohort, _ := deidCohort(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out", "deid")
	key := filepath.Join(tmp, "site.key")
	if code, _, stderr := runMosaic(t, "deid", "-q", "--out", out, "--site-key", key, filepath.Join(cohort, "dicom")); code != exitOK {
		t.Fatalf("deid: exit %d; stderr:\n%s", code, stderr)
	}
	csvOut := filepath.Join(tmp, "clinical-deid.csv")
	if code, _, stderr := runMosaic(t, "deid", "clinical", "--site-key", key, "--id-column", "patient_id",
		"--issuer-column", "issuer_of_patient_id", "--date-columns", "diagnosis_date,last_contact_date",
		"--out", csvOut, filepath.Join(cohort, synth.ClinicalFile)); code != exitOK {
		t.Fatalf("deid clinical: exit %d; stderr:\n%s", code, stderr)
	}
	files := 0
	err := filepath.WalkDir(filepath.Join(tmp, "out"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files++
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want no access for group and others", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("deid wrote no file")
	}
	for _, p := range []string{csvOut, key} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want no access for group and others", p, fi.Mode().Perm())
		}
	}
}

package deid

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// treeSeries returns the files of one synthetic series (no burned-in
// text, so the basic profile writes them).
func treeSeries(t *testing.T) [][]byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cohort")
	if _, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 1, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	series := filepath.Join(dir, "dicom", "0001", "01", "01")
	names, err := os.ReadDir(series)
	if err != nil || len(names) < 3 {
		t.Fatalf("series: %d files, %v", len(names), err)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(series, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestTreeUnnamed(t *testing.T) {
	testTree(t)
}

// TestTreeNamed: systems without O_TMPFILE write hidden temporary files
// renamed into place.
func TestTreeNamed(t *testing.T) {
	useUnnamed = false
	defer func() { useUnnamed = true }()
	testTree(t)
}

func testTree(t *testing.T) {
	objs := treeSeries(t)
	p, _ := Preset("basic")
	e, err := NewEngine(p, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	tree, err := OpenTree(out, e)
	if err != nil {
		t.Fatal(err)
	}
	w := tree.Writer()
	ropts := dicom.ReadOptions{MaxInflated: 1 << 20}
	var first Placed
	for i, b := range objs {
		got := w.Write(bytes.NewReader(b), ropts, nil)
		if got.Status != TreeOK || got.Code != "" || got.Bytes == 0 || got.Counts == nil || !strings.HasPrefix(got.Patient, "MOS-") {
			t.Fatalf("object %d: %+v", i, got)
		}
		rel, _ := filepath.Rel(out, got.Output)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 4 || parts[0] != got.Patient || !strings.HasSuffix(parts[3], ".dcm") {
			t.Errorf("object %d at %s", i, rel)
		}
		fi, err := os.Stat(got.Output)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != got.Bytes {
			t.Errorf("object %d: %v %v, %d bytes said", i, fi, err, got.Bytes)
		}
		if i == 0 {
			first = got
		}
	}
	// The same object again: skipped, within the run and in a new one.
	if got := w.Write(bytes.NewReader(objs[0]), ropts, nil); got.Status != TreeOK || got.Code != CodeSkipped || got.Bytes != 0 || got.Output != first.Output {
		t.Errorf("same object twice: %+v", got)
	}
	// Other content under the same UIDs: a duplicate in the run, an
	// existing file in a new run; never overwritten.
	twin := slices.Clone(objs[0])
	twin[len(twin)-1] ^= 0xFF
	before, _ := os.ReadFile(first.Output)
	if got := w.Write(bytes.NewReader(twin), ropts, nil); got.Status != TreeFailed || got.Code != CodeDuplicate || got.Reason != ReasonDuplicate || got.Output != "" {
		t.Errorf("twin in the run: %+v", got)
	}
	tree2, err := OpenTree(out, e)
	if err != nil {
		t.Fatal(err)
	}
	if got := tree2.Writer().Write(bytes.NewReader(twin), ropts, nil); got.Status != TreeFailed || got.Code != CodeExists {
		t.Errorf("twin in another run: %+v", got)
	}
	if got := tree2.Writer().Write(bytes.NewReader(objs[1]), ropts, nil); got.Code != CodeSkipped {
		t.Errorf("identical in another run: %+v", got)
	}
	if after, _ := os.ReadFile(first.Output); !bytes.Equal(before, after) {
		t.Error("a file was overwritten")
	}
	// The caller's check fails the object and nothing is kept.
	fresh := filepath.Join(t.TempDir(), "fresh")
	tree3, err := OpenTree(fresh, e)
	if err != nil {
		t.Fatal(err)
	}
	if got := tree3.Writer().Write(bytes.NewReader(objs[0]), ropts, func() (string, error) { return "limit", errors.New("too big") }); got.Status != TreeFailed || got.Code != "limit" || got.Reason != "too big" {
		t.Errorf("check failed: %+v", got)
	}
	// Unreadable input fails as a read error.
	if got := tree3.Writer().Write(bytes.NewReader(objs[0][:len(objs[0])/3]), ropts, nil); got.Status != TreeFailed || got.Code != CodeReadError {
		t.Errorf("truncated: %+v", got)
	}
	// A link planted where a folder goes is not followed.
	os.MkdirAll(filepath.Join(fresh), 0o700)
	if err := os.Symlink(t.TempDir(), filepath.Join(fresh, first.Patient)); err != nil {
		t.Fatal(err)
	}
	if got := tree3.Writer().Write(bytes.NewReader(objs[0]), ropts, nil); got.Status != TreeFailed || got.Code != CodeWriteError {
		t.Errorf("planted link: %+v", got)
	}
	if err := tree3.Sync(); err != nil {
		t.Fatal(err)
	}
	// No temporary file is left anywhere.
	for _, d := range []string{out, fresh} {
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(de.Name(), ".deid-") {
				t.Errorf("temporary file left: %s", p)
			}
			return nil
		})
	}
	if err := tree.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestSafeComponent(t *testing.T) {
	for s, ok := range map[string]bool{
		"MOS-1A2B": true, "2.25.123": true, "": false, ".": false, "..": false, "a/b": false, `a\b`: false,
		"a b": false, strings.Repeat("a", 129): false, strings.Repeat("a", 128): true,
	} {
		if safeComponent(s) != ok {
			t.Errorf("safeComponent(%q) = %v", s, !ok)
		}
	}
}

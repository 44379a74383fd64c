package fsx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestNoReplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	for name, move := range map[string]func(string, string) error{"rename": RenameNoReplace, "link": LinkNoReplace} {
		a, b := filepath.Join(dir, name+"-a"), filepath.Join(dir, name+"-b")
		os.WriteFile(a, []byte("first"), 0o600)
		os.WriteFile(b, []byte("second"), 0o600)
		os.Remove(dest)
		if err := move(a, dest); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := move(b, dest); !errors.Is(err, fs.ErrExist) {
			t.Errorf("%s over an existing file: %v, want fs.ErrExist", name, err)
		}
		if got, _ := os.ReadFile(dest); string(got) != "first" {
			t.Errorf("%s replaced the existing file: %q", name, got)
		}
		if _, err := os.Stat(a); !os.IsNotExist(err) {
			t.Errorf("%s left its source behind", name)
		}
	}
}

func TestUnnamed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := CreateUnnamed(dir, 0o600)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("unnamed files are not supported on this platform or file system")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("an unnamed file shows in its directory: %v", names)
	}
	f.WriteString("data")
	dest := filepath.Join(dir, "named")
	if err := LinkUnnamed(f, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "data" {
		t.Errorf("named file holds %q", got)
	}
	if err := LinkUnnamed(f, dest); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second link: %v, want fs.ErrExist", err)
	}
	if err := SyncFS(dir); err != nil {
		t.Errorf("SyncFS: %v", err)
	}
}

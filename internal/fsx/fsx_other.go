//go:build !linux

package fsx

import (
	"errors"
	"os"
)

// CreateUnnamed returns errors.ErrUnsupported: unnamed files are Linux's.
func CreateUnnamed(string, os.FileMode) (*os.File, error) { return nil, errors.ErrUnsupported }

// LinkUnnamed returns errors.ErrUnsupported.
func LinkUnnamed(*os.File, string) error { return errors.ErrUnsupported }

// RenameNoReplace moves tmp to dest, failing with fs.ErrExist when dest
// exists.
func RenameNoReplace(tmp, dest string) error { return LinkNoReplace(tmp, dest) }

// SyncFS flushes what the platform allows without a per-file sync: the
// directory itself.
func SyncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

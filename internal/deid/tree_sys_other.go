//go:build !linux

package deid

import (
	"errors"
	"os"
)

// renameNoReplace moves tmp to dest, failing with fs.ErrExist when dest
// exists.
func renameNoReplace(tmp, dest string) error { return linkNoReplace(tmp, dest) }

// syncFS flushes what the platform allows without a per-file sync: the
// output directory itself.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

var errNoUnnamed = errors.New("unnamed files are not supported here")

func openUnnamed(string) (*os.File, error) { return nil, errNoUnnamed }

func linkUnnamed(*os.File, string) error { return errNoUnnamed }

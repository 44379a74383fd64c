// Package fsx holds the file system calls that make writes durable and
// atomic where the platform offers them: unnamed files (O_TMPFILE) named
// once complete, no-replace renames and whole-file-system syncs. Where a
// call is not available it returns errors.ErrUnsupported, and callers fall
// back to portable ways.
package fsx

import (
	"errors"
	"io/fs"
	"os"
)

// LinkNoReplace gives tmp the name dest with a hard link and removes tmp,
// failing with fs.ErrExist when dest exists: the portable no-replace
// rename.
func LinkNoReplace(tmp, dest string) error {
	if err := os.Link(tmp, dest); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return os.Remove(tmp)
}

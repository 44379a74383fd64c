package deid

import (
	"errors"
	"io/fs"
	"os"
)

// linkNoReplace moves tmp to dest with a hard link, which fails when dest
// exists, then removes tmp.
func linkNoReplace(tmp, dest string) error {
	if err := os.Link(tmp, dest); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) && errors.Is(le.Err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return os.Remove(tmp)
}

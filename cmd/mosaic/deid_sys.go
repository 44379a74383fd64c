package main

import (
	"errors"
	"io"
	"io/fs"
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal, to redraw a progress line
// on it.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

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

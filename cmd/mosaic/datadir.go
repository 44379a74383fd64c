package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// dataPresent returns an error unless dir is a directory with something
// in it: a mistyped --data must not make a new, empty node or hub (with
// new keys) silently. kind is "node" or "hub", naming the init command.
func dataPresent(dir, kind string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no %s at %s: run 'mosaic %s init --data %s' or pass --create", kind, dir, kind, dir)
	}
	if err != nil {
		return fmt.Errorf("%s: data directory: %w", kind, err)
	}
	defer d.Close()
	if fi, err := d.Stat(); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s: data directory %s is not a directory", kind, dir)
	}
	if _, err := d.Readdirnames(1); err == io.EOF {
		return fmt.Errorf("no %s at %s (the directory is empty): run 'mosaic %s init --data %s' or pass --create", kind, dir, kind, dir)
	} else if err != nil {
		return fmt.Errorf("%s: data directory: %w", kind, err)
	}
	return nil
}

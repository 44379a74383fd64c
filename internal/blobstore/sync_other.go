//go:build !linux

package blobstore

import (
	"errors"
	"os"
)

const syncfsSupported = false

func syncfs(*os.File) error { return errors.ErrUnsupported }

func startWriteback(*os.File) {}

func startWritebackRange(*os.File, int64, int64) {}

func fdatasync(f *os.File) error { return f.Sync() }

// punchHole keeps the blocks where hole punching is not available.
func punchHole(*os.File, int64, int64) error { return nil }

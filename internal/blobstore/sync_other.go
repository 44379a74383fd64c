//go:build !linux

package blobstore

import (
	"errors"
	"os"
)

const syncfsSupported = false

func syncfs(*os.File) error { return errors.ErrUnsupported }

func startWriteback(*os.File) {}

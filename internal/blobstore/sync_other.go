//go:build !linux

package blobstore

import (
	"errors"
	"os"
)

const syncfsSupported = false

func syncfs(*os.File) error { return errors.ErrUnsupported }

func startWriteback(*os.File) {}

func createUnnamed(string, os.FileMode) (*os.File, error) { return nil, errors.ErrUnsupported }

func linkUnnamed(*os.File, string) error { return errors.ErrUnsupported }

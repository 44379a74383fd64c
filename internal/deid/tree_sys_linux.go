package deid

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// renameNoReplace moves tmp to dest atomically, failing with fs.ErrExist
// when dest exists (renameat2 RENAME_NOREPLACE; a hard link where the
// file system lacks it).
func renameNoReplace(tmp, dest string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dest, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fs.ErrExist
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.ENOTSUP):
		return linkNoReplace(tmp, dest)
	}
	return &os.LinkError{Op: "rename", Old: tmp, New: dest, Err: err}
}

// syncFS flushes the file system that holds dir (syncfs(2)): one call
// makes every file of the run durable.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// openUnnamed opens a file in dir that has no name (O_TMPFILE): if the run
// stops before linkUnnamed, nothing is left behind.
func openUnnamed(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
}

// linkUnnamed names an O_TMPFILE file, failing with fs.ErrExist when dest
// exists.
func linkUnnamed(f *os.File, dest string) error {
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, dest, unix.AT_SYMLINK_FOLLOW)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fs.ErrExist
	}
	return &os.LinkError{Op: "link", Old: f.Name(), New: dest, Err: err}
}

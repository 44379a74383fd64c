package fsx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// CreateUnnamed opens a new file in dir that has no name (O_TMPFILE): if
// the process dies before LinkUnnamed, nothing is left behind, and the
// file system allocates no directory entry for it. It returns
// errors.ErrUnsupported where the file system cannot.
func CreateUnnamed(dir string, mode os.FileMode) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil, errors.ErrUnsupported
		}
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
}

// LinkUnnamed gives a file of CreateUnnamed the name dest, failing with
// fs.ErrExist when dest exists.
func LinkUnnamed(f *os.File, dest string) error {
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, dest, unix.AT_SYMLINK_FOLLOW)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fs.ErrExist
	}
	return &os.LinkError{Op: "link", Old: f.Name(), New: dest, Err: err}
}

// RenameNoReplace moves tmp to dest atomically, failing with fs.ErrExist
// when dest exists (renameat2 RENAME_NOREPLACE; LinkNoReplace where the
// file system lacks it).
func RenameNoReplace(tmp, dest string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dest, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fs.ErrExist
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.ENOTSUP):
		return LinkNoReplace(tmp, dest)
	}
	return &os.LinkError{Op: "rename", Old: tmp, New: dest, Err: err}
}

// SyncFS flushes the file system that holds dir (syncfs(2)): one call
// makes every file written there durable.
func SyncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

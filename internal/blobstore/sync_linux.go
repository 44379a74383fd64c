//go:build linux

package blobstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

const syncfsSupported = true

// syncfs flushes the whole file system holding d (syncfs(2)).
func syncfs(d *os.File) error {
	rc, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return err
	}
	return serr
}

// startWriteback asks the kernel to start writing f's dirty pages to disk
// now, without waiting (sync_file_range(2), SYNC_FILE_RANGE_WRITE). It
// promises nothing about durability; it only lets the disk work while the
// caller goes on, so that the fsync in the next Sync finds little left to
// write. Errors are left for that fsync to report.
func startWriteback(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE) })
}

// createUnnamed opens a new file in dir that has no name (O_TMPFILE): if
// the process dies before linkUnnamed, nothing is left behind, and the
// file system allocates no directory entry for it. It returns
// errors.ErrUnsupported where the file system cannot.
func createUnnamed(dir string, mode os.FileMode) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil, errors.ErrUnsupported
		}
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
}

// linkUnnamed gives an O_TMPFILE file the name dest, failing with
// fs.ErrExist when dest exists.
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

// startWritebackRange is startWriteback for n bytes of f from off.
func startWritebackRange(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE) })
}

// fdatasync flushes f's data and the metadata needed to read it back
// (its size), not its times.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// punchHole releases the disk blocks of n bytes of f from off, which then
// read as zeros, without changing the file's size. File systems that
// cannot punch holes keep the blocks; that is not an error.
func punchHole(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	}); err != nil {
		return err
	}
	if errors.Is(serr, unix.EOPNOTSUPP) || errors.Is(serr, unix.ENOSYS) {
		return nil
	}
	return serr
}

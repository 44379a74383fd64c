//go:build linux

package blobstore

import (
	"errors"
	"os"

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

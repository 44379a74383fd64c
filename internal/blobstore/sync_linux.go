//go:build linux

package blobstore

import (
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

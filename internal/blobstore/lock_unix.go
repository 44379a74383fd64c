//go:build unix && !aix

package blobstore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockPack takes the exclusive flock(2) lock a writer holds on its pack
// for as long as the pack is open: a pack nobody holds a lock on is not
// being written. It does not wait.
func lockPack(f *os.File) error {
	locked, err := tryLockPack(f)
	if err == nil && !locked {
		err = errors.New("pack locked by another process")
	}
	return err
}

// tryLockPack takes the lock if no one holds it and reports whether it
// did.
func tryLockPack(f *os.File) (bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if lerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return false, err
	}
	if errors.Is(lerr, unix.EWOULDBLOCK) {
		return false, nil
	}
	return lerr == nil, lerr
}

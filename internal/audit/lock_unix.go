//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package audit

import (
	"os"
	"syscall"
)

// locking says whether Open locks the file against a second writer.
const locking = true

// lockFile takes an exclusive advisory lock on f without waiting. flock
// locks belong to the open file, so a second Open of the same path fails
// even within one process. The lock goes with the file's last close.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

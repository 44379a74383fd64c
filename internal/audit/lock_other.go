//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package audit

import "os"

// locking says whether Open locks the file against a second writer.
const locking = false

// lockFile does nothing where flock(2) is missing: the caller must make
// sure only one Log has the file open.
func lockFile(*os.File) error { return nil }

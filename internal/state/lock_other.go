//go:build !unix

package state

import (
	"fmt"
	"os"
	"runtime"
)

// tryLock is not implemented off unix: fail loudly rather than run unlocked.
func tryLock(f *os.File) (bool, error) {
	return false, fmt.Errorf("lock %s: file locking is not supported on %s", f.Name(), runtime.GOOS)
}

// syncDir is a no-op where directories cannot be opened for fsync.
func syncDir(string) error { return nil }

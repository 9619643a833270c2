//go:build unix

package sdktest

import (
	"errors"
	"syscall"
)

// processGone reports whether no process has the given pid. Signal 0 only
// checks; EPERM means the pid exists but belongs to someone else.
func processGone(pid int) (bool, error) {
	err := syscall.Kill(pid, 0)
	switch {
	case errors.Is(err, syscall.ESRCH):
		return true, nil
	case err == nil, errors.Is(err, syscall.EPERM):
		return false, nil
	}
	return false, err
}

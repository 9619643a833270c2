// Package syserr gives the system's own words of a network error, for
// messages that name what went wrong without Go's wrapping ("listen tcp
// 127.0.0.1:80: bind:").
package syserr

import (
	"errors"
	"net"
	"os"
)

// Cause returns the system call error inside a *net.OpError ("address
// already in use"), else the OpError's own error, else err unchanged.
func Cause(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return se.Err
		}
		return oe.Err
	}
	return err
}

//go:build unix

package ssh

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByMe mirrors ssh, which checks permissions only on key files the user
// owns (a key mounted from elsewhere may legitimately be shared).
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Getuid()
}

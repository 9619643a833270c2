package plugin

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/e2e-tool/e2e/internal/proc"
)

// A socket directory holds the unix sockets go-plugin makes for one e2e
// process's plugins. It is named socketDirPrefix+random and holds an owner
// record, socketDirOwner, naming the e2e process that made it. A later e2e
// removes the directory of a process that is gone only through that record:
// a directory without it, or with anything in it but sockets, is never
// touched, whatever its name.
const (
	socketDirPrefix = "e2e-plugin-sockets-"
	socketDirOwner  = "e2e-owner"
	// ownerHeader is the first line of an owner record.
	ownerHeader = "e2e plugin socket directory"
)

// makeSocketDir creates a socket directory in base with its owner record.
func makeSocketDir(base string) (string, error) {
	dir, err := os.MkdirTemp(base, socketDirPrefix)
	if err != nil {
		return "", err
	}
	pid := os.Getpid()
	record := fmt.Sprintf("%s\npid=%d\nstart=%s\n", ownerHeader, pid, processStart(pid))
	if err := os.WriteFile(filepath.Join(dir, socketDirOwner), []byte(record), 0o600); err != nil {
		_ = os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// removeSocketDir removes a socket directory: its sockets, its owner
// record, then the directory itself. If anything else is in it, nothing is
// removed: it is not only ours.
func removeSocketDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var sockets []string
	for _, e := range entries {
		switch {
		case e.Name() == socketDirOwner && e.Type().IsRegular():
		case e.Type()&fs.ModeSocket != 0:
			sockets = append(sockets, e.Name())
		default:
			return fmt.Errorf("%s holds %s, which e2e did not make: leaving it", dir, e.Name())
		}
	}
	for _, name := range sockets {
		_ = os.Remove(filepath.Join(dir, name))
	}
	_ = os.Remove(filepath.Join(dir, socketDirOwner))
	return os.Remove(dir)
}

// sweepSocketDirs removes the socket directories, in base, of e2e processes
// of this user that are gone (killed with SIGKILL, so they could not
// remove their own). Only a directory whose owner record proves it is one
// is considered.
func sweepSocketDirs(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), socketDirPrefix) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		pid, start, ok := readSocketDirOwner(dir)
		if !ok || pid == os.Getpid() || processAlive(pid, start) {
			continue
		}
		_ = removeSocketDir(dir)
	}
}

// readSocketDirOwner reads a directory's owner record. It reports false
// unless the directory and the record are this user's, the record is a
// regular file and it parses.
func readSocketDirOwner(dir string) (pid int, start string, ok bool) {
	if !ownedByMe(dir, true) {
		return 0, "", false
	}
	path := filepath.Join(dir, socketDirOwner)
	if !ownedByMe(path, false) {
		return 0, "", false
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || sc.Text() != ownerHeader {
		return 0, "", false
	}
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "pid":
			pid, _ = strconv.Atoi(v)
		case "start":
			start = v
		}
	}
	return pid, start, pid > 0
}

// ownedByMe reports whether path (not followed if a link) is a directory
// (dir) or a regular file owned by this process's user.
func ownedByMe(path string, dir bool) bool {
	fi, err := os.Lstat(path)
	if err != nil || (dir && !fi.IsDir()) || (!dir && !fi.Mode().IsRegular()) {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

// processAlive reports whether process pid runs and, when start is known,
// is the same process that wrote the record (not a later one given the
// same pid). A zombie has ended.
func processAlive(pid int, start string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	st, err := proc.Stat(pid)
	if err != nil {
		// Alive to kill(2) but unreadable: assume it is the owner.
		return true
	}
	return !st.Ended() && (start == "" || st.Start == start)
}

// processStart is the start time of process pid, or "" when it cannot be
// read.
func processStart(pid int) string {
	st, err := proc.Stat(pid)
	if err != nil {
		return ""
	}
	return st.Start
}

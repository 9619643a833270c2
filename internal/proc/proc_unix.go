//go:build unix

package proc

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// ownGroup makes the command the leader of a new process group (its pid
// is the group id) and ends the whole group on cancellation.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return endGroup(cmd.Process.Pid, Grace) }
}

// endGroup sends SIGTERM to group pgid, waits up to grace for every
// process of it to end, and sends SIGKILL to what is left. It signals only
// a group it has just seen alive, so a group id freed and reused since is
// never hit.
func endGroup(pgid int, grace time.Duration) error {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			// exec.Cmd then reports the exit as it was, not as cancelled.
			return os.ErrProcessDone
		}
		return err
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if !groupAlive(pgid) {
			return nil
		}
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// groupAlive reports whether a process of group pgid still runs. Zombies
// do not count: they have ended, and wait only for a parent (an init that
// does not reap, in some containers) to collect them. Without /proc, any
// member counts.
func groupAlive(pgid int) bool {
	all, err := All()
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, st := range all {
		if st.PGID == pgid && !st.Ended() {
			return true
		}
	}
	return false
}

func killGroup(cmd *exec.Cmd) error {
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

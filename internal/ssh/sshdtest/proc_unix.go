//go:build unix

package sshdtest

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts sshd in a process group of its own, so that stopping
// it also ends the per-connection processes still in that group.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

//go:build unix

package reaper

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Spawn starts exe with args and env as a reaper: in a session of its own
// (setsid), so that signals to the caller's process group or terminal do
// not reach it, with stdin, stdout and stderr on the null device, so that
// it holds no pipe of the caller's (a `go test` waits for its test
// binary's output to close). The caller may Wait for it while it lives,
// or Release it.
func Spawn(exe string, args, env []string) (*exec.Cmd, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	defer null.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	return cmd, nil
}

// exists reports whether a process has pid, for systems without /proc.
func exists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

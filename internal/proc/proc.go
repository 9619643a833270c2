// Package proc starts the subprocesses of e2e and of its plugins so that
// none outlives the work it belongs to: each command runs in a process
// group of its own, cancelling its context ends the whole group (SIGTERM,
// then SIGKILL after Grace), and Wait never hangs on an output pipe that a
// process left behind still holds (WaitDelay). Every subprocess the core
// and the plugins start goes through Command.
package proc

import (
	"context"
	"os/exec"
	"time"
)

const (
	// Grace is how long a cancelled command's process group has between
	// SIGTERM and SIGKILL: long enough for a tool to remove its temporary
	// files, short enough that Ctrl-C feels prompt.
	Grace = 3 * time.Second
	// WaitDelay bounds how long Wait waits for the command's output
	// pipes once its process group is gone (after cancellation) or once
	// the command exited (without): a process that left the group, or
	// one the command left running, cannot hang Wait by holding the
	// pipe. Wait then returns exec.ErrWaitDelay if nothing else failed.
	WaitDelay = 2 * time.Second
)

// Command returns exec.CommandContext(ctx, name, args...) set up to run in
// a process group of its own; when ctx is done while the command runs, the
// group gets SIGTERM and, if any of it is still there after Grace, SIGKILL,
// and Wait returns at most WaitDelay later. The group also keeps a
// terminal's Ctrl-C (sent to the foreground group) away from the command:
// e2e decides how it ends. Callers may set Stdin, Stdout, Stderr, Env and
// Dir, but not SysProcAttr or Cancel.
//
// Processes the command leaves running after it exited on its own are not
// killed: only cancellation ends the group.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	ownGroup(cmd)
	cmd.WaitDelay = WaitDelay
	return cmd
}

// KillGroup sends SIGKILL to the process group of a started command made
// by Command, for a caller that must end it at once without cancelling its
// context (a plugin that failed its handshake).
func KillGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return killGroup(cmd)
}

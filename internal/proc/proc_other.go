//go:build !unix

package proc

import "os/exec"

// ownGroup: without process groups only the command itself is killed on
// cancellation (exec.CommandContext's default).
func ownGroup(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }

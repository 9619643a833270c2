package proc_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// TestCancelEndsTheGroup: a command whose child holds its stdout open and
// ignores SIGTERM. Cancelling the context ends both, and Wait returns; a
// process that left the group cannot hang Wait either.
func TestCancelEndsTheGroup(t *testing.T) {
	tests := []struct {
		name string
		// script runs under sh with $1 the file its stubborn child writes
		// its pid to.
		script string
		// outside: the child left the group (setsid); cancellation does
		// not reach it, WaitDelay stops Wait from waiting for its pipe.
		outside bool
	}{
		{"child ignores SIGTERM and holds stdout",
			`sh -c 'trap "" TERM; echo $$ > "$1"; exec sleep 1000' sh "$1" & wait`, false},
		{"command and child ignore SIGTERM",
			`trap "" TERM; sh -c 'echo $$ > "$1"; exec sleep 1000' sh "$1" & while :; do sleep 1; done`, false},
		{"child left the group and holds stdout",
			`setsid sh -c 'echo $$ > "$1"; exec sleep 1000' sh "$1" & wait`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "child.pid")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := proc.Command(ctx, "sh", "-c", tc.script, "sh", pidFile)
			// A buffer, not a file: exec copies the pipe in a goroutine
			// that Wait waits for, the case that hung before.
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			child := testbin.WaitPid(t, pidFile, 10*time.Second)
			if tc.outside {
				t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			cancel()
			// Not a timing goal: the bound only tells a hang from an end.
			bound := proc.Grace + proc.WaitDelay + 5*time.Second
			select {
			case err := <-waited:
				if err == nil {
					t.Errorf("Wait after cancel returned nil, want the cancellation")
				}
			case <-time.After(bound):
				t.Fatalf("Wait did not return within %s of the cancellation", bound)
			}
			if !testbin.Gone(cmd.Process.Pid, 5*time.Second) {
				t.Errorf("the command (pid %d) is still running", cmd.Process.Pid)
			}
			if tc.outside {
				if testbin.Gone(child, 0) {
					t.Errorf("the child outside the group (pid %d) was killed: only the group is e2e's to end", child)
				}
				return
			}
			if !testbin.Gone(child, 5*time.Second) {
				t.Errorf("the child (pid %d) survived the cancellation", child)
			}
		})
	}
}

// TestCommandRunsInItsOwnGroup: a command that ends on its own is
// untouched: its output is whole and it led a process group of its own.
func TestCommandRunsInItsOwnGroup(t *testing.T) {
	out, err := proc.Command(context.Background(), "sh", "-c", `echo $$; cut -d' ' -f5 /proc/$$/stat`).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != f[1] {
		t.Errorf("pid and process group: %q, want the same number twice", out)
	}
	if pgid, _ := syscall.Getpgid(os.Getpid()); len(f) == 2 && f[1] == strconv.Itoa(pgid) {
		t.Errorf("the command ran in the test's process group %d", pgid)
	}
}

// TestExitLeavingAChildBehind: a command that exits while a child it left
// holds its stdout: Wait returns ErrWaitDelay instead of waiting for the
// child.
func TestExitLeavingAChildBehind(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	cmd := proc.Command(context.Background(), "sh", "-c", `sh -c 'echo $$ > "$1"; exec sleep 1000' sh "$1" & echo started`, "sh", pidFile)
	var out bytes.Buffer
	cmd.Stdout = &out
	waited := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { waited <- cmd.Wait() }()
	child := testbin.WaitPid(t, pidFile, 10*time.Second)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	bound := proc.WaitDelay + 5*time.Second
	select {
	case err := <-waited:
		if !errors.Is(err, exec.ErrWaitDelay) {
			t.Errorf("Wait = %v, want exec.ErrWaitDelay", err)
		}
	case <-time.After(bound):
		t.Fatalf("Wait did not return within %s although the command exited", bound)
	}
	if out.String() != "started\n" {
		t.Errorf("output %q, want %q", out.String(), "started\n")
	}
}

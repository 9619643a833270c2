package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// TestInterruptDuringLocalGenconf: Ctrl-C while the installer's genconf
// runs on this machine, and the installer has started a child that
// ignores SIGTERM and holds the output pipe. e2e exits 130 promptly and
// no process of the installer remains. (It used to hang: only bash was
// killed, and e2e waited for the pipe the child held.)
func TestInterruptDuringLocalGenconf(t *testing.T) {
	s := newSandbox(t)
	expectCode(t, s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", "gc"), 0)
	dir := t.TempDir()
	installer := filepath.Join(dir, "dcos_generate_config.sh")
	writeFile(t, installer, `#!/bin/bash
if [ "$1" = --version ]; then echo '{"version": "0.0-test", "variant": ""}'; exit 0; fi
here=$(dirname "$0")
echo $$ > "$here/installer.pid"
( trap '' TERM; echo $BASHPID > "$here/child.pid"; exec sleep 1000 ) &
sleep 1000 &
echo $! > "$here/sleep.pid"
echo "genconf: working"
wait
`)
	cmd := exec.Command(built.e2e, "--plugin-dir", built.pluginDir, "install", "-c", "gc", "--installer", installer)
	cmd.Env = s.env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	pids := map[string]int{}
	for _, name := range []string{"installer", "child", "sleep"} {
		pids[name] = testbin.WaitPid(t, filepath.Join(dir, name+".pid"), 30*time.Second)
	}
	t.Cleanup(func() {
		// Only if the test failed: the processes this test started.
		for _, pid := range pids {
			if !testbin.Gone(pid, 0) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan int, 1)
	go func() { exited <- exitCodeOf(t, cmd) }()
	// Not a timing goal: the bound tells "exits" from "hangs".
	bound := proc.Grace + proc.WaitDelay + 10*time.Second
	select {
	case code := <-exited:
		if code != 130 {
			t.Errorf("exit code %d after Ctrl-C, want 130; stderr: %s", code, stderr.String())
		}
	case <-time.After(bound):
		t.Fatalf("e2e did not exit within %s of Ctrl-C during genconf; stderr: %s", bound, stderr.String())
	}
	for name, what := range map[string]string{"installer": "the installer", "child": "the installer's child that ignores SIGTERM",
		"sleep": "the installer's child that holds no pipe"} {
		if !testbin.Gone(pids[name], 5*time.Second) {
			t.Errorf("%s (pid %d) is still running", what, pids[name])
		}
	}
	if strings.Contains(stderr.String(), "goroutine ") {
		t.Errorf("a stack trace reached the user:\n%s", stderr.String())
	}
}

package main

import (
	"fmt"
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
	cmd, stderr := s.start(built.e2e, "--plugin-dir", built.pluginDir, "install", "-c", "gc", "--installer", installer)
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

// pidFile reads the pid the test backend wrote when Create started.
func pidFile(t *testing.T, s *sandbox) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.machine, "create.pid"))
	if err != nil {
		t.Fatalf("the plugin did not record its pid: %v", err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestCrashDuringCreate(t *testing.T) {
	s := newSandbox(t)
	r := s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", "boom", "--agents", "3", "-o", "crash_after_nodes=2")
	expectCode(t, r, 1)
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{`"test" backend plugin`, built.test, "crashed during create", "injected crash after 2 nodes"} {
		if !strings.Contains(last, want) {
			t.Errorf("error %q does not mention %q", last, want)
		}
	}
	if pid := pidFile(t, s); !testbin.Gone(pid, 5*time.Second) {
		t.Errorf("crashed plugin process %d still exists", pid)
	}
	if pids := testbin.Processes(built.test); len(pids) != 0 {
		t.Errorf("plugin processes left: %v", pids)
	}
	// The half-made cluster was destroyed by a fresh plugin, and not recorded.
	if got := s.clusterDirs(); len(got) != 0 {
		t.Errorf("half-made cluster left behind: %v", got)
	}
	if got := s.records(); len(got) != 0 {
		t.Errorf("state records %v after a failed create", got)
	}
}

func TestPanicInPluginIsAnError(t *testing.T) {
	s := newSandbox(t)
	r := s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-o", "panic_in_create=true")
	expectCode(t, r, 1)
	if !strings.Contains(r.Stderr, "the test backend failed (a bug in the plugin): injected panic") {
		t.Errorf("stderr = %s", r.Stderr)
	}
	if strings.Contains(r.Stderr, "goroutine") {
		t.Errorf("a stack trace reached the user:\n%s", r.Stderr)
	}
	if pids := testbin.Processes(built.test); len(pids) != 0 {
		t.Errorf("plugin processes left: %v", pids)
	}
}

// startCreate starts a slow create and waits until the plugin made a node.
func startCreate(t *testing.T, s *sandbox, id string, extra ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	args := append([]string{"--plugin-dir", built.pluginDir, "create", "--backend", "test", "-o", s.dirOpt(),
		"-c", id, "--agents", "5", "-o", "create_delay=500ms"}, extra...)
	cmd, stderr := s.start(built.e2e, args...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(s.machine, "clusters", id))
		if len(entries) > 0 {
			return cmd, stderr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin made no node in time; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exitCodeOf(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	if err == nil {
		return 0
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatal(err)
	}
	return ee.ExitCode()
}

func TestInterruptDuringCreate(t *testing.T) {
	s := newSandbox(t)
	cmd, stderr := startCreate(t, s, "sigint")
	pid := pidFile(t, s)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, cmd); code != 130 {
		t.Fatalf("exit code %d after Ctrl-C, want 130; stderr: %s", code, stderr)
	}
	oneErrorLine(t, testbin.Result{Stderr: stderr.String()}, `e2e: interrupted while creating cluster "sigint"; nothing was left behind`)
	// The plugin saw the cancellation and cleaned up before e2e exited.
	if _, err := os.Stat(filepath.Join(s.machine, "sigint.cancelled")); err != nil {
		t.Errorf("the plugin did not see the cancellation: %v", err)
	}
	if got := s.clusterDirs(); len(got) != 0 {
		t.Errorf("interrupted create left %v", got)
	}
	if got := s.records(); len(got) != 0 {
		t.Errorf("state records %v after an interrupted create", got)
	}
	if !testbin.Gone(pid, 5*time.Second) {
		t.Errorf("plugin process %d outlived e2e", pid)
	}
	if pids := testbin.Processes(built.test); len(pids) != 0 {
		t.Errorf("plugin processes left: %v", pids)
	}
}

func TestInterruptWithRetainKeepsNodes(t *testing.T) {
	s := newSandbox(t)
	cmd, stderr := startCreate(t, s, "kept", "--retain")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, cmd); code != 130 {
		t.Fatalf("exit code %d, want 130; stderr: %s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "retained") {
		t.Errorf("stderr does not say the nodes were retained: %s", stderr)
	}
	if got := s.clusterDirs(); len(got) != 1 {
		t.Fatalf("--retain kept %v, want the half-made cluster", got)
	}
	// The retained cluster can be destroyed later.
	expectCode(t, s.e2e("destroy", "-c", "kept"), 0)
	if got := s.clusterDirs(); len(got) != 0 {
		t.Errorf("destroy left %v", got)
	}
}

func TestKilledE2ELeavesNoPlugin(t *testing.T) {
	s := newSandbox(t)
	// A TMPDIR of its own: another e2e on this machine may sweep /tmp.
	tmp := shortTempDir(t)
	s.extra = append(s.extra, "TMPDIR="+tmp)
	// A cleanup longer than the watchdog's 1 s period: the watchdog logs
	// to the dead e2e's pipe while the cleanup runs, which must not kill
	// the plugin (it did, by SIGPIPE, and the cleanup stopped half-way).
	cmd, _ := startCreate(t, s, "killed", "-o", "cleanup_delay=2500ms")
	pid := pidFile(t, s)
	// SIGKILL gives e2e no chance to clean up; the plugin's watchdog must.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !testbin.Gone(pid, 10*time.Second) {
		t.Errorf("plugin process %d outlived a killed e2e", pid)
	}
	// It cancelled its work and cleaned up on the way out.
	if got := s.clusterDirs(); len(got) != 0 {
		t.Errorf("the orphaned plugin left %v", got)
	}
	// The next e2e removes the killed one's socket directory, found by
	// the owner record in it.
	killed := socketDirsIn(tmp, cmd.Process.Pid)
	if len(killed) == 0 {
		t.Fatalf("no socket directory with an owner record of pid %d", cmd.Process.Pid)
	}
	expectCode(t, s.e2e("version"), 0)
	expectCode(t, s.e2e("plugin", "info", "test"), 0)
	for _, dir := range killed {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the killed e2e's socket directory %s is still there (%v)", dir, err)
		}
	}
	// Nothing else either: the plugin's socket was in that directory, not
	// loose in TMPDIR.
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in TMPDIR: %s (%s)", e.Name(), e.Type())
	}
}

// socketDirsIn returns the plugin socket directories in dir whose owner
// record names pid.
func socketDirsIn(dir string, pid int) []string {
	dirs, _ := filepath.Glob(filepath.Join(dir, "e2e-plugin-sockets-*"))
	var out []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "e2e-owner"))
		if err == nil && strings.Contains(string(b), fmt.Sprintf("\npid=%d\n", pid)) {
			out = append(out, d)
		}
	}
	return out
}

package main

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stagingDirs returns the temporary bundle directories `e2e logs --tar`
// keeps in the cluster's state directory under home.
func stagingDirs(t *testing.T, home string) []string {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "logs-tmp-") {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// startLogs starts e2e logs with args and waits until ready says the run
// got as far as it needs; ok is false when the run ended first. wait
// returns the run's exit code.
func startLogs(t *testing.T, s *sandbox, ready func() bool, args ...string) (cmd *exec.Cmd, wait func() int, ok bool) {
	t.Helper()
	cmd = exec.Command(built.e2e, append([]string{"--plugin-dir", built.pluginDir, "-q", "logs"}, args...)...)
	cmd.Env = s.env()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	wait = func() int { <-done; return cmd.ProcessState.ExitCode() }
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ready() {
			return cmd, wait, true
		}
		select {
		case <-done:
			return cmd, wait, false
		default:
		}
	}
	_ = cmd.Process.Kill()
	wait()
	t.Fatalf("e2e logs %v never got ready", args)
	return nil, nil, false
}

// logsSafety: e2e logs never replaces a file, leaves nothing in the
// user's directory after kill -9, removes what it wrote when interrupted,
// and names a dangling symbolic link given as --dir.
func logsSafety(t *testing.T, s *sandbox, id string) {
	t.Run("a file that appears at --tar meanwhile stays", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "race.tgz")
		_, wait, ok := startLogs(t, s, func() bool { return len(stagingDirs(t, s.home)) > 0 }, "-c", id, "--tar", file)
		if !ok {
			t.Fatal("e2e logs ended before it staged the bundle")
		}
		writeFile(t, file, "USER DATA\n")
		if code := wait(); code != 1 {
			t.Errorf("e2e logs: exit %d, want 1", code)
		}
		if b, _ := os.ReadFile(file); string(b) != "USER DATA\n" {
			t.Errorf("%s was replaced: %.100q", file, b)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("%s holds %d entries, want only the user's file", dir, len(entries))
		}
	})

	t.Run("kill -9 leaves nothing in the user's directory", func(t *testing.T) {
		dir := t.TempDir()
		cmd, wait, ok := startLogs(t, s, func() bool { return len(stagingDirs(t, s.home)) > 0 }, "-c", id, "--tar", filepath.Join(dir, "k9.tgz"))
		if !ok {
			t.Fatal("e2e logs ended before it staged the bundle")
		}
		_ = cmd.Process.Kill()
		wait()
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("after kill -9, %s holds %v", dir, entries)
		}
		for _, d := range stagingDirs(t, s.home) {
			_ = os.RemoveAll(d) // what destroy would remove with the cluster
		}
	})

	t.Run("Ctrl-C removes what it wrote", func(t *testing.T) {
		for attempt := 0; ; attempt++ {
			out := filepath.Join(t.TempDir(), "intdir")
			cmd, wait, ok := startLogs(t, s, func() bool {
				_, err := os.Stat(filepath.Join(out, "cluster.json"))
				return err == nil
			}, "-c", id, "--dir", out)
			if ok {
				_ = cmd.Process.Signal(syscall.SIGINT)
			}
			code := wait()
			if code == 0 && attempt < 3 {
				continue // it finished before the Ctrl-C
			}
			if code != exitInterrupted {
				t.Errorf("after Ctrl-C: exit %d, want %d", code, exitInterrupted)
			}
			if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after Ctrl-C, %s is there (%v): want what the run made removed", out, err)
			}
			return
		}
	})

	t.Run("--dir a dangling symbolic link", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "dangdir")
		if err := os.Symlink("nowhere", link); err != nil {
			t.Fatal(err)
		}
		r := s.e2e("logs", "-c", id, "--dir", link)
		expectCode(t, r, 2)
		oneErrorLine(t, r, "symbolic link to nowhere")
	})
}

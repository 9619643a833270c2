package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// TestInstallSweepsStagedLeftovers: a file staged by an install that was
// killed (kill -9: nothing ran to remove it) is removed by the next
// install, as soon as its installer is gone; one staged by an install
// that still runs is not, nor one this version cannot tell the installer
// of (it goes after a day), nor a file e2e did not make.
func TestInstallSweepsStagedLeftovers(t *testing.T) {
	s := newSandbox(t)
	dir := filepath.Join(s.data, "e2e", "plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stagedBy := func(cmd *exec.Cmd) string {
		st, err := proc.Stat(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(".install-%d-%s-1234", st.PID, st.Start)
	}
	dead := exec.Command("sleep", "600")
	live := exec.Command("sleep", "600")
	for _, c := range []*exec.Cmd{dead, live} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = live.Process.Kill(); _ = live.Wait() })
	deadName, liveName := stagedBy(dead), stagedBy(live)
	_ = dead.Process.Kill()
	_ = dead.Wait()
	for _, name := range []string{deadName, liveName, ".install-987654", "notes.txt"} {
		writeFile(t, filepath.Join(dir, name), "partial plugin")
	}
	src := copyFile(t, built.test, filepath.Join(t.TempDir(), "e2e-backend-test"), 0o755)
	expectCode(t, testbin.Run(t, s.env(), built.e2e, "plugin", "install", src), 0)
	for _, tc := range []struct {
		name string
		kept bool
	}{
		{deadName, false}, {liveName, true}, {".install-987654", true}, {"notes.txt", true},
	} {
		_, err := os.Stat(filepath.Join(dir, tc.name))
		if kept := err == nil; kept != tc.kept {
			t.Errorf("after an install, %s is there: %v, want %v", tc.name, kept, tc.kept)
		}
	}
}

package plugin

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// deadPid returns the pid of a process that has ended and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestSweepSocketDirs: only directories whose owner record names a process
// that is gone are removed; a user's directories are never touched, even
// named like ours or holding a record-like file.
func TestSweepSocketDirs(t *testing.T) {
	dead := deadPid(t)
	parent := os.Getppid()
	record := func(pid int, start string) string {
		return fmt.Sprintf("%s\npid=%d\nstart=%s\n", ownerHeader, pid, start)
	}
	cases := []struct {
		name    string
		dir     string
		files   map[string]string
		socket  bool
		removed bool
	}{
		{name: "dead owner", dir: socketDirPrefix + "a", files: map[string]string{socketDirOwner: record(dead, "")}, socket: true, removed: true},
		{name: "pid reused by another process", dir: socketDirPrefix + "b", files: map[string]string{socketDirOwner: record(parent, "1")}, removed: true},
		{name: "live owner", dir: socketDirPrefix + "c", files: map[string]string{socketDirOwner: record(parent, processStart(parent))}, socket: true},
		{name: "no owner record", dir: socketDirPrefix + "d", files: map[string]string{"notes.txt": "mine"}},
		{name: "empty, no record", dir: socketDirPrefix + "e"},
		{name: "record of a dead owner but user files too", dir: socketDirPrefix + "f", files: map[string]string{socketDirOwner: record(dead, ""), "report.pdf": "x"}},
		{name: "record without the header", dir: socketDirPrefix + "g", files: map[string]string{socketDirOwner: fmt.Sprintf("pid=%d\n", dead)}},
		{name: "old e2e-PID- pattern", dir: fmt.Sprintf("e2e-%d-report", dead), files: map[string]string{"data": "x"}},
		{name: "digits like a cluster workspace", dir: "e2e-12345-0123abcd", files: map[string]string{".e2e-workspace": "x"}},
	}
	base := t.TempDir()
	for _, c := range cases {
		dir := filepath.Join(base, c.dir)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, content := range c.files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if c.socket {
			l, err := net.Listen("unix", filepath.Join(dir, "plugin1"))
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
		}
	}
	// A link named like ours to a directory of the user's.
	target := t.TempDir()
	if err := os.WriteFile(filepath.Join(target, socketDirOwner), []byte(record(dead, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(base, socketDirPrefix+"link")); err != nil {
		t.Fatal(err)
	}

	sweepSocketDirs(base)

	for _, c := range cases {
		_, err := os.Stat(filepath.Join(base, c.dir))
		if gone := os.IsNotExist(err); gone != c.removed {
			t.Errorf("%s: removed=%v, want %v", c.name, gone, c.removed)
		}
		if !c.removed {
			for name, content := range c.files {
				b, err := os.ReadFile(filepath.Join(base, c.dir, name))
				if err != nil || string(b) != content {
					t.Errorf("%s: %s changed: %q, %v", c.name, name, b, err)
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(target, socketDirOwner)); err != nil {
		t.Errorf("the sweep followed a link into a user's directory: %v", err)
	}
}

// TestSocketDirLifecycle: a host's directory carries its record while it
// lives and is gone after Close.
func TestSocketDirLifecycle(t *testing.T) {
	dir, err := makeSocketDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pid, start, ok := readSocketDirOwner(dir)
	if !ok || pid != os.Getpid() || start == "" {
		t.Fatalf("owner record: pid %d start %q ok %v", pid, start, ok)
	}
	if err := removeSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("socket directory still there: %v", err)
	}
}

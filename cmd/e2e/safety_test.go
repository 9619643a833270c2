package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// decoy is a directory of the user's that e2e must never touch, named the
// way e2e names its own temporary directories.
type decoy struct {
	path    string
	content string // of the file "data" in it; "" for an empty directory
}

func makeDecoys(t *testing.T, dir string) []decoy {
	t.Helper()
	ds := []decoy{
		{path: filepath.Join(dir, "e2e-2024-report"), content: "quarterly numbers"},
		{path: filepath.Join(dir, "e2e-99999999-notes"), content: "a pid that is not running"},
		{path: filepath.Join(dir, "e2e-12345-0123456789abcdef"), content: "looks like a workspace"},
		{path: filepath.Join(dir, "e2e-plugin-sockets-mine"), content: "looks like a socket directory"},
		{path: filepath.Join(dir, "e2e-plugin-sockets-empty")},
		{path: filepath.Join(dir, "e2e-empty")},
		{path: filepath.Join(dir, "e2e-node-rootfs-old"), content: "looks like an image build"},
		{path: filepath.Join(dir, "e2e-genconf-old"), content: "looks like a genconf"},
	}
	for _, d := range ds {
		if err := os.Mkdir(d.path, 0o755); err != nil {
			t.Fatal(err)
		}
		if d.content != "" {
			writeFile(t, filepath.Join(d.path, "data"), d.content)
		}
	}
	return ds
}

func checkDecoys(t *testing.T, after string, ds []decoy) {
	t.Helper()
	for _, d := range ds {
		if _, err := os.Stat(d.path); err != nil {
			t.Fatalf("after %s: the user's directory %s is gone: %v", after, d.path, err)
		}
		if d.content == "" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d.path, "data")); err != nil || string(b) != d.content {
			t.Fatalf("after %s: the user's file in %s changed: %q, %v", after, d.path, b, err)
		}
	}
}

// TestNothingOfTheUsersIsRemoved runs every command against a Docker
// cluster whose id is all digits, with the user's own directories named
// like e2e's in the same temporary directory, and after each checks that
// they and the live cluster's workspace are still there. Removals are
// proven by e2e's own markers and records, never by names.
func TestNothingOfTheUsersIsRemoved(t *testing.T) {
	testbin.RequireDocker(t, "")
	s := newSandbox(t)
	// A private temporary directory, short enough for plugin sockets.
	tmp := shortTempDir(t)
	s.extra = append(s.extra, "TMPDIR="+tmp, "E2E_TEST_BACKEND_DIR="+s.machine)
	decoys := makeDecoys(t, tmp)
	id := "12345" + strings.TrimLeft(randomDigits(t), "0")
	dockerCluster(t, s, id, "--masters", "1", "--agents", "1", "--public-agents", "0")

	workspaces, _ := filepath.Glob(filepath.Join(tmp, "e2e-"+id+"-*"))
	if len(workspaces) != 1 {
		t.Fatalf("want the cluster's workspace in %s, found %v", tmp, workspaces)
	}
	ws := workspaces[0]
	live := func(after string) {
		t.Helper()
		checkDecoys(t, after, decoys)
		if _, err := os.Stat(filepath.Join(ws, ".e2e-workspace")); err != nil {
			t.Fatalf("after %s: the live cluster's workspace %s is gone: %v", after, ws, err)
		}
	}
	live("create")

	local := t.TempDir()
	writeFile(t, filepath.Join(local, "f"), "payload")
	for _, args := range [][]string{
		{"version"},
		{"plugin", "list"},
		{"plugin", "info", "docker"},
		{"list"},
		{"list", "--backend", "docker"},
		{"inspect", "-c", id},
		{"run", "-c", id, "--all", "--", "true"},
		{"send-file", "-c", id, filepath.Join(local, "f"), "/tmp/f"},
		{"download", "-c", id, "--node", "agent_0", "/etc/hostname", filepath.Join(local, "hostname")},
		{"clean", "--dry-run"},
		{"clean"},
		{"destroy", "-c", "no-such-cluster"},
		{"forget", "-c", "no-such-cluster"},
	} {
		r := s.e2e(args...)
		if r.Code != 0 && !strings.Contains(strings.Join(args, " "), "no-such-cluster") {
			t.Fatalf("e2e %v: exit %d\n%s", args, r.Code, r.Stderr)
		}
		live("e2e " + strings.Join(args, " "))
	}

	// An e2e killed with SIGKILL cannot remove its own plugin socket
	// directory: the next one removes it, and only it.
	cmd := exec.Command(built.e2e, "--plugin-dir", built.pluginDir, "run", "-c", id, "--", "sleep", "30")
	cmd.Env = s.env()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killedDir := waitForSocketDir(t, tmp, cmd.Process.Pid)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	expectCode(t, s.e2e("list"), 0)
	if _, err := os.Stat(killedDir); !os.IsNotExist(err) {
		t.Errorf("the killed e2e's socket directory %s is still there (%v)", killedDir, err)
	}
	live("e2e list after a killed e2e")

	expectCode(t, s.e2e("destroy", "-c", id), 0)
	checkDecoys(t, "destroy", decoys)
	if _, err := os.Stat(ws); !os.IsNotExist(err) {
		t.Errorf("destroy left the workspace %s (%v)", ws, err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "e2e-plugin-sockets-*")); len(left) != 2 {
		t.Errorf("socket directories left in %s: %v (want only the two decoys)", tmp, left)
	}
}

// waitForSocketDir waits until process pid has made its plugin socket
// directory in dir and returns it.
func waitForSocketDir(t *testing.T, dir string, pid int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, d := range socketDirsIn(dir, pid) {
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("process %d made no plugin socket directory in %s", pid, dir)
	return ""
}

func randomDigits(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, c := range randomSuffix(t) {
		b.WriteByte('0' + byte(c)%10)
	}
	return b.String()
}

package examples_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/sdk/sdktest"
)

// TestNspawnBackend builds examples/nspawn from its own module, checks it
// with sdktest, installs it with `e2e plugin install` and runs create, run,
// send-file and destroy through the real e2e binary.
func TestNspawnBackend(t *testing.T) {
	var rootErr error
	if os.Geteuid() != 0 {
		rootErr = errors.New("not running as root")
	}
	testbin.Require(t, "root (systemd-nspawn and overlay mounts need it)", rootErr)
	_, err := exec.LookPath("systemd-nspawn")
	testbin.Require(t, "systemd-nspawn (make deps; Debian: apt-get install systemd-container)", err)

	work := shortDir(t)
	plugin := filepath.Join(work, "build", "e2e-backend-nspawn")
	buildExample(t, "nspawn", plugin)
	e2e := testbin.Build(t, "./cmd/e2e", filepath.Join(work, "cli", "e2e"), "9.9.9-test")
	image := nodeRootfs(t, filepath.Join(work, "image"), testbin.Build(t, "./plugins/docker",
		filepath.Join(work, "docker", "e2e-backend-docker"), "1.0.0-test"))

	t.Run("sdktest", func(t *testing.T) {
		dir := filepath.Join(work, "sdktest")
		sdktest.Run(t, sdktest.Config{
			Binary:  plugin,
			Options: map[string]any{"image": image, "dir": dir},
			Masters: 1,
			Timeout: 3 * time.Minute,
		})
		checkNothingLeft(t, dir)
	})

	t.Run("cli", func(t *testing.T) {
		dir := filepath.Join(work, "cli-nodes")
		home, data := t.TempDir(), t.TempDir()
		env := []string{"PATH=" + testPath(), "HOME=" + home, "E2E_HOME=" + home, "XDG_DATA_HOME=" + data}
		e2eRun := func(args ...string) testbin.Result {
			t.Helper()
			return testbin.Run(t, env, e2e, args...)
		}
		mustRun := func(args ...string) string {
			t.Helper()
			r := e2eRun(args...)
			if r.Code != 0 {
				t.Fatalf("e2e %s: exit code %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
			}
			return r.Stdout
		}

		if out := mustRun("plugin", "install", plugin); strings.TrimSpace(out) != "nspawn" {
			t.Fatalf("plugin install printed %q, want the backend's name", out)
		}
		// Bad input: one error line naming what to fix, exit 2, nothing made.
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"-o", "image=" + filepath.Join(work, "no-such-image")}, `option "image"`},
			{[]string{"-o", "image=" + image, "-o", "subnet=10.0.0.0/16"}, `option "subnet"`},
			{[]string{"-o", "image=" + image, "--ssh-user", "no-such-user"}, `no user "no-such-user"`},
		} {
			args := append([]string{"create", "--backend", "nspawn", "-c", "bad-input", "-o", "dir=" + dir}, tc.args...)
			r := e2eRun(args...)
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			if r.Code != 2 || !strings.Contains(lines[len(lines)-1], tc.want) {
				t.Errorf("e2e %s: exit code %d, want 2 and an error naming %s\nstderr: %s", strings.Join(args, " "), r.Code, tc.want, r.Stderr)
			}
			checkNothingLeft(t, dir)
		}

		id := "nspawn-" + randomHex(t)
		t.Cleanup(func() { e2eRun("destroy", "-c", id) })
		mustRun("create", "--backend", "nspawn", "-c", id, "--masters", "1", "--agents", "1", "--public-agents", "0",
			"-o", "image="+image, "-o", "dir="+dir)

		master := "e2e-" + id + "-master-0"
		if got := strings.TrimSpace(mustRun("run", "-c", id, "--node", "agent_0", "--", "hostname")); got != "e2e-"+id+"-agent-0" {
			t.Errorf("agent_0's hostname is %q", got)
		}
		// Nodes find each other by hostname, at their own loopback address.
		if got := mustRun("run", "-c", id, "--node", "agent_0", "--", "getent", "hosts", master); !strings.HasPrefix(got, "127.77.") {
			t.Errorf("agent_0 resolves %s to %q, want an address in 127.77.0.0/16", master, got)
		}
		// The host key the core pinned is the one the node's sshd serves.
		hostKey := strings.Fields(mustRun("run", "-c", id, "--node", "master_0", "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub"))
		knownHosts, err := os.ReadFile(filepath.Join(home, "clusters", id, "known_hosts"))
		if err != nil {
			t.Fatal(err)
		}
		if len(hostKey) < 2 || !strings.Contains(string(knownHosts), hostKey[0]+" "+hostKey[1]) {
			t.Errorf("known_hosts does not pin master_0's host key %v:\n%s", hostKey, knownHosts)
		}

		src := filepath.Join(t.TempDir(), "payload")
		if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "sub", "file.txt"), []byte("sent by e2e\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun("send-file", "-c", id, src, "/opt/payload")
		for _, node := range []string{"master_0", "agent_0"} {
			if got := mustRun("run", "-c", id, "--node", node, "--", "cat", "/opt/payload/sub/file.txt"); got != "sent by e2e\n" {
				t.Errorf("%s has %q in the file sent", node, got)
			}
		}

		// systemd-nspawn of agent_0 killed (kill -9, the OOM killer): its
		// machine runs on without it, and destroy still ends it.
		b, err := os.ReadFile(filepath.Join(dir, "clusters", id, "agent-0", "pid"))
		if err != nil {
			t.Fatal(err)
		}
		nspawnPID, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(nspawnPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !testbin.Gone(nspawnPID, 10*time.Second) {
			t.Fatalf("systemd-nspawn (pid %d) still runs after SIGKILL", nspawnPID)
		}
		if len(machineProcesses(dir)) == 0 {
			t.Errorf("no process of a machine found under %s: the check for what is left cannot see them", dir)
		}

		mustRun("destroy", "-c", id)
		if r := e2eRun("list"); r.Code != 0 || r.Stdout != "" || !strings.Contains(r.Stderr, "no clusters") {
			t.Errorf("e2e list after destroy: exit code %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
		}
		checkNothingLeft(t, dir)

		// Ctrl-C once a machine has started: e2e exits 130 and the backend
		// stops the machines and removes what it made.
		id = "nspawn-int-" + randomHex(t)
		cmd := exec.Command(e2e, "create", "--backend", "nspawn", "-c", id, "--masters", "2", "--agents", "0",
			"--public-agents", "0", "-o", "image="+image, "-o", "dir="+dir)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		waitFile(t, filepath.Join(dir, "clusters", id, "master-0", "pid"))
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("e2e create interrupted: %v, want exit code 130\n%s", err, stderr.String())
		}
		if r := e2eRun("list"); r.Code != 0 || r.Stdout != "" || !strings.Contains(r.Stderr, "no clusters") {
			t.Errorf("e2e list after an interrupted create: exit code %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
		}
		checkNothingLeft(t, dir)

		// kill -9 of e2e and the plugin once a machine has started: the
		// machines outlive them, and e2e clean removes them (the backend
		// looks under the dir of $E2E_NSPAWN_DIR).
		env = append(env, "E2E_NSPAWN_DIR="+dir)
		id = "nspawn-kill-" + randomHex(t)
		cmd = exec.Command(e2e, "create", "--backend", "nspawn", "-c", id, "--masters", "1", "--agents", "0",
			"--public-agents", "0", "-o", "image="+image)
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		waitFile(t, filepath.Join(dir, "clusters", id, "master-0", "pid"))
		for _, pid := range testbin.Processes(filepath.Join(data, "e2e", "plugins", "e2e-backend-nspawn")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if _, err := os.Stat(filepath.Join(dir, "clusters", id)); err != nil {
			t.Fatalf("after kill -9 the cluster's directory should be left for e2e clean: %v", err)
		}
		if r := e2eRun("clean"); r.Code != 0 || !strings.Contains(r.Stderr+r.Stdout, id) {
			t.Errorf("e2e clean: exit code %d, want 0 and the leftover %s named\nstdout: %s\nstderr: %s", r.Code, id, r.Stdout, r.Stderr)
		}
		checkNothingLeft(t, dir)
	})
}

// waitFile waits up to a minute for path to exist.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, err := os.Stat(path); err != nil; _, err = os.Stat(path) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within a minute", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// buildExample builds the main package of examples/NAME from its own module
// (against this repository's SDK, through its go.mod's replace) to out.
func buildExample(t *testing.T, name, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=0.1.0-test", "-o", out, ".")
	cmd.Dir = filepath.Join(testbin.Root(), "examples", name)
	// The example's module, not the repository's: GOFLAGS and GOWORK of
	// the caller must not change what it builds against.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building examples/%s: %v\n%s", name, err, b)
	}
}

// nodeRootfs unpacks e2e's Docker node image (built once per machine by the
// docker plugin, offline with debootstrap) into dir, as a root file system
// for the nspawn backend. The container made to export it is labelled, so
// that `e2e clean` finds it should the test die.
func nodeRootfs(t *testing.T, dir, dockerPlugin string) string {
	t.Helper()
	ref := testbin.NodeImage(t, dockerPlugin, "the test takes the nodes' root file system from e2e's node image")
	label := "e2e.cluster-id=nspawn-image-" + randomHex(t)
	id, err := exec.Command("docker", "create", "--label", label, ref).Output()
	if err != nil {
		t.Fatalf("docker create: %v", err)
	}
	container := strings.TrimSpace(string(id))
	defer func() { _ = exec.Command("docker", "rm", "-f", "-v", container).Run() }()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	export := exec.Command("sh", "-c", `docker export "$1" | tar -x -C "$2" && rm -f "$2/.dockerenv"`, "sh", container, dir)
	if b, err := export.CombinedOutput(); err != nil {
		t.Fatalf("exporting the node image: %v\n%s", err, b)
	}
	return dir
}

// checkNothingLeft checks that no cluster directory and no machine of dir
// is left.
func checkNothingLeft(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(dir, "clusters"))
	for _, e := range entries {
		t.Errorf("left behind: %s", filepath.Join(dir, "clusters", e.Name()))
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "--directory="+dir+"/") {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		if stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat")); err == nil && !isZombie(stat) {
			t.Errorf("left behind: machine process %s: %s", pid, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	for _, p := range machineProcesses(dir) {
		t.Errorf("left behind: process of a machine: %s", p)
	}
}

// machineProcesses lists, as "PID: ARGV", the live processes of machines
// whose node directory is under dir: they carry it in E2E_NSPAWN_NODE, and
// outlive a killed systemd-nspawn.
func machineProcesses(dir string) []string {
	var out []string
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range envs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(append([]byte{0}, b...), []byte("\x00E2E_NSPAWN_NODE="+dir+"/")) {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat")); err == nil && !isZombie(stat) {
			out = append(out, pid+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// isZombie reports whether /proc/PID/stat says the process has ended (this
// kind of sandbox may not reap).
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// shortDir is a temporary directory short enough for go-plugin's unix
// sockets and without ',' or ':' (an overlay mount cannot take them).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "e2e-nspawn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// testPath is $PATH without directories holding e2e backends, so that the
// e2e under test finds only the plugin it installed.
func testPath() string {
	var keep []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if found, _ := filepath.Glob(filepath.Join(dir, "e2e-backend-*")); len(found) == 0 {
			keep = append(keep, dir)
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

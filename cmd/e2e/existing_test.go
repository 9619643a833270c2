package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	"github.com/e2e-tool/e2e/internal/testbin"
	gossh "golang.org/x/crypto/ssh"
)

// userKey writes a fresh private key as a user's key file (0600) and
// returns its path and authorized_keys line.
func userKey(t testing.TB) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "e2e test user")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub)))
}

// machines starts n sshd servers standing in for existing machines.
func machines(t *testing.T, n int, authorized string) []*sshdtest.Server {
	t.Helper()
	var out []*sshdtest.Server
	for range n {
		out = append(out, sshdtest.Start(t, sshdtest.Options{AuthorizedKeys: []string{authorized}}))
	}
	return out
}

func hostOpt(role string, s *sshdtest.Server) string {
	return fmt.Sprintf("%s=%s:%d", role, s.Endpoint.Host, s.Endpoint.Port)
}

func TestExistingCluster(t *testing.T) {
	key, authorized := userKey(t)
	ms := machines(t, 3, authorized)
	kh := sshdtest.KnownHostsFile(t, ms...)
	s := newSandbox(t)
	bin := t.TempDir()
	e2e := buildAll(t, bin)
	run := func(args ...string) testbin.Result { return testbin.Run(t, s.env(), e2e, args...) }

	r := run("create", "--backend", "existing", "-c", "ex", "-o", hostOpt("masters", ms[0]),
		"-o", hostOpt("agents", ms[1]), "-o", hostOpt("agents", ms[2]),
		"--ssh-user", "root", "--ssh-key", key, "--known-hosts", kh)
	expectCode(t, r, 0)
	// The machines are found, then checked, then recorded: said in that
	// order, and never "created".
	want := []string{"[ex] found 3 nodes; checking SSH", "[ex] check SSH on every node", "recorded cluster ex (3 existing nodes, backend existing)"}
	if got := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || !strings.HasPrefix(got[2], want[2]) {
		t.Errorf("create said:\n%s\nwant:\n%s ...", r.Stderr, strings.Join(want, "\n"))
	}

	r = run("inspect", "-c", "ex", "--json")
	expectCode(t, r, 0)
	var c cluster.Cluster
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Masters()) != 1 || len(c.Agents()) != 2 || len(c.PublicAgents()) != 0 {
		t.Fatalf("nodes = %+v", c.Nodes)
	}
	for i, n := range c.Nodes {
		if n.SSH.Port != ms[i].Endpoint.Port || n.SSH.User != "root" {
			t.Errorf("node %s: %+v, want port %d as root", n.ID(), n.SSH, ms[i].Endpoint.Port)
		}
	}

	// Each node answers with the port its sshd listens on: the command ran
	// on every node, and each line carries the node's reference.
	r = run("run", "-c", "ex", "--all", "--", "sh", "-c", `echo "${SSH_CONNECTION##* }"`)
	expectCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	sort.Strings(lines)
	want = []string{
		"agent_0: " + strconv.Itoa(ms[1].Endpoint.Port),
		"agent_1: " + strconv.Itoa(ms[2].Endpoint.Port),
		"master_0: " + strconv.Itoa(ms[0].Endpoint.Port),
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("run --all printed:\n%s\nwant:\n%s", r.Stdout, strings.Join(want, "\n"))
	}

	src := filepath.Join(t.TempDir(), "payload.txt")
	writeFile(t, src, "hello nodes\n")
	dst := filepath.Join(t.TempDir(), "dst", "payload.txt")
	r = run("send-file", "-c", "ex", src, dst)
	expectCode(t, r, 0)
	if b, err := os.ReadFile(dst); err != nil || string(b) != "hello nodes\n" {
		t.Errorf("sent file: %q, %v", b, err)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	expectCode(t, run("download", "-c", "ex", "--node", "agent_1", dst, back), 0)
	if b, err := os.ReadFile(back); err != nil || string(b) != "hello nodes\n" {
		t.Errorf("downloaded file: %q, %v", b, err)
	}

	// Machines e2e did not make cannot be stopped or started by it.
	for _, verb := range []string{"stop", "start"} {
		r = run(verb, "-c", "ex")
		expectCode(t, r, 2)
		oneErrorLine(t, r, "the existing backend cannot "+verb+" clusters", `"ex"`)
	}
	expectCode(t, run("run", "-c", "ex", "--all", "--", "true"), 0)

	r = run("destroy", "-c", "ex")
	expectCode(t, r, 2)
	oneErrorLine(t, r, "e2e did not create these machines", "e2e forget -c ex")

	expectCode(t, run("forget", "-c", "ex"), 0)
	r = run("list", "--json")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "[]" {
		t.Errorf("list after forget = %s", r.Stdout)
	}
	// The machines were not touched.
	r = run("create", "--backend", "existing", "-c", "again", "-o", hostOpt("masters", ms[0]),
		"--ssh-key", key, "--known-hosts", kh)
	expectCode(t, r, 0)
}

func TestExistingClusterChecks(t *testing.T) {
	key, authorized := userKey(t)
	ms := machines(t, 2, authorized)
	kh := sshdtest.KnownHostsFile(t, ms...)
	s := newSandbox(t)
	e2e := buildAll(t, t.TempDir())
	run := func(args ...string) testbin.Result { return testbin.Run(t, s.env(), e2e, args...) }
	base := []string{"create", "--backend", "existing", "-o", hostOpt("masters", ms[0]), "-o", hostOpt("agents", ms[1]), "--ssh-key", key}

	// A count that disagrees with the host lists.
	r := run(append(base, "--known-hosts", kh, "--agents", "3")...)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "1 host given with -o agents", "count is 3")

	// An unknown host key is refused unless asked to record it, in one
	// sentence: the node and its address, the key, the user's known_hosts
	// looked in (not the cluster's own file, which only e2e writes), and
	// the two ways out.
	hostKey := ms[0].HostKey.Type() + " " + gossh.FingerprintSHA256(ms[0].HostKey)
	emptyKH := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, emptyKH, "")
	for _, tc := range []struct {
		name  string
		flags []string
		where string
	}{
		{"no known_hosts", nil, "which no known_hosts file has (there is no ~/.ssh/known_hosts)"},
		{"not in the given file", []string{"--known-hosts", emptyKH}, "which is not in " + emptyKH},
	} {
		r = run(append(base, append([]string{"-c", "unknown"}, tc.flags...)...)...)
		expectCode(t, r, 2)
		// Every node fails; the first in node order is told.
		addr := fmt.Sprintf("%s:%d", ms[0].Endpoint.Host, ms[0].Endpoint.Port)
		oneErrorLine(t, r, "master_0 at "+addr+" presents host key "+hostKey+", "+tc.where+
			": give a known_hosts file that has it with --known-hosts FILE, or accept it on first contact with --accept-new-host-keys")
		for _, jargon := range []string{s.home, "accept-new)", ") ("} {
			if strings.Contains(r.Stderr, jargon) {
				t.Errorf("%s: the message has %q:\n%s", tc.name, jargon, r.Stderr)
			}
		}
	}
	r = run(append(base, "-c", "accepted", "--accept-new-host-keys")...)
	expectCode(t, r, 0)
	expectCode(t, run("run", "-c", "accepted", "--node", "agent_0", "--", "true"), 0)

	// A machine that refuses connections: reported after one attempt
	// (machines that exist already are not waited for), with the node and
	// its address; nothing recorded.
	dead := sshdtest.Start(t, sshdtest.Options{AuthorizedKeys: []string{authorized}})
	dead.Stop()
	r = run("create", "--backend", "existing", "-c", "dead", "-o", hostOpt("masters", ms[0]), "-o", hostOpt("agents", dead),
		"--ssh-key", key, "--known-hosts", kh)
	expectCode(t, r, 1)
	oneErrorLine(t, r, "agent_0", fmt.Sprintf("%s:%d", dead.Endpoint.Host, dead.Endpoint.Port), "connection refused")
	if strings.Contains(r.Stderr, "gave up after") {
		t.Errorf("the refused machine was retried instead of reported at once:\n%s", r.Stderr)
	}
	// Asked to, e2e retries (for sshd that is still starting).
	r = run("create", "--backend", "existing", "-c", "dead", "-o", hostOpt("masters", ms[0]), "-o", hostOpt("agents", dead),
		"--ssh-key", key, "--known-hosts", kh, "--ssh-timeout", "1500ms")
	expectCode(t, r, 1)
	oneErrorLine(t, r, "agent_0", "gave up after")
	r = run("list", "--json")
	if strings.Contains(r.Stdout, `"dead"`) {
		t.Errorf("an unreachable cluster was recorded: %s", r.Stdout)
	}

	// DC/OS cannot be installed on machines e2e did not make: refused
	// before anything is recorded.
	r = run("create", "--backend", "existing", "-c", "inst", "-o", hostOpt("masters", ms[0]), "--ssh-key", key,
		"--known-hosts", kh, "--installer", key)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "existing backend cannot install DC/OS")
	if r := run("list", "--json"); strings.Contains(r.Stdout, `"inst"`) {
		t.Errorf("a refused create was recorded: %s", r.Stdout)
	}

	// A user the machines do not have: the user's mistake, said once.
	r = run("create", "--backend", "existing", "-c", "nouser", "-o", hostOpt("masters", ms[0]), "-o", hostOpt("agents", ms[1]),
		"--ssh-key", key, "--known-hosts", kh, "--ssh-user", "nosuchuser")
	expectCode(t, r, 2)
	oneErrorLine(t, r, "nosuchuser")
	if n := strings.Count(r.Stderr, "was refused"); n != 1 {
		t.Errorf("the refused login is told %d times, want once:\n%s", n, r.Stderr)
	}

	// A key the machines do not accept.
	other, _ := userKey(t)
	r = run("create", "--backend", "existing", "-c", "wrongkey", "-o", hostOpt("masters", ms[0]), "--ssh-key", other, "--known-hosts", kh)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "root", strconv.Itoa(ms[0].Endpoint.Port))
}

func TestRunExitCodes(t *testing.T) {
	key, authorized := userKey(t)
	ms := machines(t, 2, authorized)
	kh := sshdtest.KnownHostsFile(t, ms...)
	s := newSandbox(t)
	e2e := buildAll(t, t.TempDir())
	run := func(args ...string) testbin.Result { return testbin.Run(t, s.env(), e2e, args...) }
	expectCode(t, run("create", "--backend", "existing", "-o", hostOpt("masters", ms[0]), "-o", hostOpt("agents", ms[1]),
		"--ssh-key", key, "--known-hosts", kh), 0)

	tests := []struct {
		name string
		args []string
		code int
	}{
		{"success", []string{"--", "true"}, 0},
		{"failure", []string{"--", "false"}, 1},
		{"exit code", []string{"--", "sh", "-c", "exit 42"}, 42},
		{"not found", []string{"--", "no-such-command-e2e"}, 127},
		{"signal", []string{"--", "sh", "-c", "kill -TERM $$"}, 143},
		{"first non-zero in node order", []string{"--all", "--", "sh", "-c", `case "${SSH_CONNECTION##* }" in ` + strconv.Itoa(ms[0].Endpoint.Port) + `) exit 3;; *) exit 4;; esac`}, 3},
		{"env and quoting", []string{"-e", "GREETING=hi there", "--", "sh", "-c", `test "$GREETING" = "hi there" && test "$1" = 'a "b" $c'`, "sh", `a "b" $c`}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(append([]string{"run"}, tc.args...)...)
			expectCode(t, r, tc.code)
		})
	}
	// SSH itself failing gives 255, as ssh does.
	ms[1].Stop()
	r := run("run", "--node", "agent_0", "--", "true")
	expectCode(t, r, 255)
	oneErrorLine(t, r, "agent_0")
}

// buildAll builds e2e and the built-in plugins into dir with the Makefile.
func buildAll(t testing.TB, dir string) string {
	t.Helper()
	if err := testbin.Compile("./cmd/e2e", filepath.Join(dir, "e2e"), "9.9.9-test"); err != nil {
		t.Fatal(err)
	}
	if err := testbin.Compile("./plugins/existing", filepath.Join(dir, "e2e-backend-existing"), "9.9.9-test"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "e2e")
}

// TestShellAndUsers: e2e ssh without a terminal reads the shell's commands
// from stdin; --user and --sudo run commands as other users.
func TestShellAndUsers(t *testing.T) {
	key, authorized := userKey(t)
	ms := machines(t, 1, authorized)
	kh := sshdtest.KnownHostsFile(t, ms...)
	s := newSandbox(t)
	e2e := buildAll(t, t.TempDir())
	expectCode(t, testbin.Run(t, s.env(), e2e, "create", "--backend", "existing", "-o", hostOpt("masters", ms[0]),
		"--ssh-key", key, "--known-hosts", kh), 0)

	cmd := exec.Command(e2e, "ssh", "--node", "master_0")
	cmd.Env = s.env()
	cmd.Stdin = strings.NewReader("echo shell-says-$((6*7))\nexit 5\n")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
		t.Errorf("e2e ssh exit: %v, want 5", err)
	}
	if strings.TrimSpace(string(out)) != "shell-says-42" {
		t.Errorf("e2e ssh printed %q", out)
	}

	// With a command, as ssh HOST COMMAND: the words joined into one line
	// that the login shell runs (a pipe, a variable), its exit code e2e's;
	// with or without --.
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--", "echo", "$((6*7))", "|", "tr", "4", "x"}, "x2", 0},
		{[]string{"echo", "no-dashes"}, "no-dashes", 0},
		{[]string{"--node", "master_0", "--", "echo", "out;", "exit", "3"}, "out", 3},
		{[]string{"--", "test", "-n", `"$HOME"`, "&&", "echo", "login-shell"}, "login-shell", 0},
	} {
		c := exec.Command(e2e, append([]string{"ssh"}, tc.args...)...)
		c.Env = s.env()
		out, err := c.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("e2e ssh %v = %q, exit %d; want %q, exit %d", tc.args, out, code, tc.want, tc.code)
		}
	}

	// A wait that times out says what the last check printed, or that it
	// printed nothing.
	for _, tc := range []struct{ command, last string }{
		{"false", "last result: exited 1 with no output"},
		{"echo not yet; exit 3", `last result: exited 3; last output line: "not yet"`},
	} {
		r := testbin.Run(t, s.env(), e2e, "wait", "--command", tc.command, "--timeout", "1s")
		expectCode(t, r, 1)
		oneErrorLine(t, r, "timed out", "on master_0", tc.last)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "nobody", "--", "id", "-un"}, "nobody"},
		{[]string{"--sudo", "--", "id", "-un"}, "root"},
		{[]string{"--", "sh", "-c", "cat | wc -c"}, "11"},
		// As the README says, each command gets an E2E_RUN_ID.
		{[]string{"--", "sh", "-c", `test -n "$E2E_RUN_ID" && echo has-a-run-id`}, "has-a-run-id"},
	} {
		c := exec.Command(e2e, append([]string{"run"}, tc.args...)...)
		c.Env = s.env()
		c.Stdin = strings.NewReader("hello world")
		out, err := c.Output()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("run %v = %q, %v; want %q", tc.args, out, err, tc.want)
		}
	}
}

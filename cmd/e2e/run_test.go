package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// runCluster makes the cluster "default" of four existing machines (sshd
// on 127.0.0.1): master_0, agent_0, agent_1, public_agent_0. It returns a
// function that runs e2e in the sandbox and the machines.
func runCluster(t *testing.T) (*sandbox, string, []*sshdtest.Server) {
	t.Helper()
	key, authorized := userKey(t)
	ms := machines(t, 4, authorized)
	kh := sshdtest.KnownHostsFile(t, ms...)
	s := newSandbox(t)
	e2e := buildAll(t, t.TempDir())
	expectCode(t, testbin.Run(t, s.env(), e2e, "create", "--backend", "existing",
		"-o", hostOpt("masters", ms[0]), "-o", hostOpt("agents", ms[1]), "-o", hostOpt("agents", ms[2]),
		"-o", hostOpt("public_agents", ms[3]), "--ssh-key", key, "--known-hosts", kh), 0)
	return s, e2e, ms
}

// TestRunNeverGuessesWhere: a flag e2e run does not know, before the
// command, is a usage error with a suggestion; the command runs nowhere,
// not on the cluster "default" nor on master_0. A command given without
// -- starts at its first word that is not a flag.
func TestRunNeverGuessesWhere(t *testing.T) {
	s, e2e, _ := runCluster(t)
	run := func(args ...string) testbin.Result { return testbin.Run(t, s.env(), e2e, args...) }
	marker := filepath.Join(t.TempDir(), "ran")

	tests := []struct {
		name      string
		args      []string
		fragments []string
	}{
		{"misspelt cluster flag", []string{"run", "--cluster", "nc1", "--", "touch", marker}, []string{"unknown flag --cluster", `did you mean "--cluster-id"`}},
		{"misspelt node flag", []string{"run", "--nodes", "agent_1", "--", "touch", marker}, []string{"unknown flag --nodes", `did you mean "--node"`}},
		{"unknown short flag", []string{"run", "-x", "touch", marker}, []string{"unknown flag -x"}},
		{"no command", []string{"run", "--all"}, []string{"command"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.args...)
			expectCode(t, r, 2)
			oneErrorLine(t, r, tc.fragments...)
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the command ran although e2e refused the flags")
			}
		})
	}

	// Without --, the first word that is not a flag starts the command;
	// what follows it is the command's, flags included.
	r := run("run", "--node", "agent_1", "echo", "--all", "-c", "x")
	expectCode(t, r, 0)
	if got := strings.TrimSpace(r.Stdout); got != "--all -c x" {
		t.Errorf("run without -- printed %q, want the command's own arguments", got)
	}
}

// TestRunSummary: when the command fails on several nodes, one line names
// every failed node and its code; the exit code is the first non-zero in
// node order.
func TestRunSummary(t *testing.T) {
	s, e2e, ms := runCluster(t)
	port := func(i int) string { return strconv.Itoa(ms[i].Endpoint.Port) }
	script := `case "${SSH_CONNECTION##* }" in ` + port(1) + `) exit 7;; ` + port(3) + `) kill -TERM $$;; ` + port(2) + `) exit 1;; esac`
	r := testbin.Run(t, s.env(), e2e, "run", "--all", "--", "sh", "-c", script)
	expectCode(t, r, 7)
	oneErrorLine(t, r, "e2e: command failed on 3 of 4 nodes: agent_0 exited 7, agent_1 exited 1, public_agent_0 exited 143 (signal TERM)")

	// SSH failing on one node is named too; the code is still the first
	// non-zero in node order.
	ms[2].Stop()
	r = testbin.Run(t, s.env(), e2e, "run", "--all", "--", "sh", "-c", script)
	expectCode(t, r, 7)
	oneErrorLine(t, r, "command failed on 3 of 4 nodes: agent_0 exited 7, agent_1 (", "127.0.0.1:"+port(2), "public_agent_0 exited 143")
	if n := strings.Count(r.Stderr, "agent_1"); n != 1 {
		t.Errorf("agent_1 is named %d times, want once:\n%s", n, r.Stderr)
	}
}

// TestInterruptedRunSaysWhat: Ctrl-C on e2e run ends with one line saying
// what was interrupted.
func TestInterruptedRunSaysWhat(t *testing.T) {
	s, e2e, _ := runCluster(t)
	started := filepath.Join(t.TempDir(), "started")
	cmd, stderr := s.start(e2e, "run", "--node", "agent_1", "--", "sh", "-c", "touch "+started+"; sleep 30")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command did not start; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, cmd); code != 130 {
		t.Fatalf("exit code %d after Ctrl-C, want 130; stderr: %s", code, stderr.String())
	}
	oneErrorLine(t, testbin.Result{Stderr: stderr.String()},
		"e2e: interrupted while running `sh -c touch "+started+"; sleep 30` on agent_1 of cluster \"default\"")
	if strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("stderr says %q:\n%s", "context canceled", stderr.String())
	}
}

package main

import (
	"strings"
	"testing"
)

// TestProgressLines: each step is named once however the events of its
// nodes interleave; -v adds what was made and each step's time; -vv adds
// e2e's and the plugins' debug logs but not go-plugin's own lines, which
// -vvv shows.
func TestProgressLines(t *testing.T) {
	s := newSandbox(t)
	create := func(id string, verbose ...string) string {
		t.Helper()
		args := append(verbose, "create", "--backend", "test", "-o", s.dirOpt(), "-o", "two_steps=true", "-c", id,
			"--agents", "2", "--public-agents", "1")
		r := s.e2e(args...)
		expectCode(t, r, 0)
		return r.Stderr
	}
	count := func(out, line string) int {
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if l == line {
				n++
			}
		}
		return n
	}

	out := create("quiet")
	for _, step := range []string{"[quiet] create nodes", "[quiet] boot nodes"} {
		if n := count(out, step); n != 1 {
			t.Errorf("%q is said %d times, want once:\n%s", step, n, out)
		}
	}
	if !strings.Contains(out, "created cluster quiet (4 nodes, backend test)") {
		t.Errorf("create said:\n%s", out)
	}
	for _, extra := range []string{"done in", "master_0:", "[DEBUG]", "[TRACE]"} {
		if strings.Contains(out, extra) {
			t.Errorf("without -v create says %q:\n%s", extra, out)
		}
	}
	r := s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", "one", "--agents", "0", "--public-agents", "0")
	expectCode(t, r, 0)
	if !strings.Contains(r.Stderr, "created cluster one (1 node, backend test)") {
		t.Errorf("create of one node said:\n%s", r.Stderr)
	}

	out = create("info", "-v")
	for _, want := range []string{"[info] create nodes: done in ", " (4/4)\n", "[info] boot nodes: done in ",
		"[info] master_0: e2e-info-master-0, address 10.0.0.1, SSH root@127.0.0.1:22\n",
		"[info] public_agent_0: e2e-info-public_agent-0, address 10.0.0.4, SSH root@127.0.0.1:22\n",
		"[info] state (key pair, known_hosts): " + s.home} {
		if !strings.Contains(out, want) {
			t.Errorf("-v: create does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "[DEBUG]") {
		t.Errorf("-v shows debug lines:\n%s", out)
	}

	out = create("debug", "-vv")
	if !strings.Contains(out, "[DEBUG] e2e.test.e2e-backend-test: made 4 nodes") {
		t.Errorf("-vv does not show the plugin's debug logs:\n%s", out)
	}
	for _, machinery := range []string{"automatic mTLS", "plugin address", "waiting for RPC address", "stdio", "plugin process exited"} {
		if strings.Contains(out, machinery) {
			t.Errorf("-vv shows go-plugin's %q:\n%s", machinery, out)
		}
	}
	out = create("trace", "-vvv")
	for _, machinery := range []string{"[TRACE] e2e.test: configuring client automatic mTLS", "[TRACE] e2e.test.e2e-backend-test: configuring server automatic mTLS"} {
		if !strings.Contains(out, machinery) {
			t.Errorf("-vvv does not show %q:\n%s", machinery, out)
		}
	}
}

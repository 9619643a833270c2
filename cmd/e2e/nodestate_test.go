package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// inspectJSON is what `e2e inspect --json` says of a cluster.
func inspectJSON(t *testing.T, s *sandbox, id string) cluster.Cluster {
	t.Helper()
	r := s.e2e("inspect", "-c", id, "--json")
	expectCode(t, r, 0)
	var c cluster.Cluster
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.Stdout)
	}
	return c
}

// listRow is the `e2e list --json` row of a cluster.
func listRow(t *testing.T, s *sandbox, id string) cluster.Summary {
	t.Helper()
	r := s.e2e("list", "--json")
	expectCode(t, r, 0)
	var rows []cluster.Summary
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
		t.Fatalf("list --json: %v\n%s", err, r.Stdout)
	}
	for _, row := range rows {
		if row.ID == id {
			return row
		}
	}
	t.Fatalf("list --json does not show %s:\n%s", id, r.Stdout)
	return cluster.Summary{}
}

func nodeOf(t *testing.T, c cluster.Cluster, ref string) cluster.Node {
	t.Helper()
	for _, n := range c.Nodes {
		if n.ID() == ref {
			return n
		}
	}
	t.Fatalf("cluster %s has no node %s: %+v", c.ID, ref, c.Nodes)
	return cluster.Node{}
}

// inspectRow is the line of `e2e inspect`'s node table for ref.
func inspectRow(t *testing.T, out, ref string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == ref {
			return f
		}
	}
	t.Fatalf("inspect shows no row for %s:\n%s", ref, out)
	return nil
}

// TestStopStartCLI: e2e stop and e2e start through a backend that can (the
// test backend), and what list, inspect and the node commands say of a
// stopped cluster.
func TestStopStartCLI(t *testing.T) {
	s := newSandbox(t)
	expectCode(t, s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", "nap", "--agents", "2"), 0)
	if r := s.e2e("plugin", "info", "test"); !strings.Contains(r.Stdout, "start-stop=true") {
		t.Errorf("plugin info does not show start-stop=true:\n%s", r.Stdout)
	}

	r := s.e2e("stop", "-c", "nap")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "nap" {
		t.Errorf("stop printed %q on stdout, want the cluster id", r.Stdout)
	}
	expectCode(t, s.e2e("stop", "-c", "nap"), 0) // stopping a stopped cluster succeeds
	row := listRow(t, s, "nap")
	if row.Status != "stopped" || len(row.Nodes) != 4 || row.Nodes["agent_1"] != cluster.NodeStopped {
		t.Errorf("list row %+v, want stopped with 4 stopped nodes", row)
	}
	r = s.e2e("inspect", "-c", "nap")
	expectCode(t, r, 0)
	if !strings.Contains(r.Stdout, "status: stopped\n") {
		t.Errorf("inspect does not say the cluster is stopped:\n%s", r.Stdout)
	}
	if f := inspectRow(t, r.Stdout, "agent_0"); len(f) != 5 || f[1] != "stopped" || f[4] != "-" {
		t.Errorf("inspect row of agent_0: %q, want state stopped and SSH -", f)
	}
	if regexp.MustCompile(`@\S*:0\b`).MatchString(r.Stdout) {
		t.Errorf("inspect shows a port 0:\n%s", r.Stdout)
	}

	// Node commands fail at once, saying what to do, with ssh's code.
	src := filepath.Join(t.TempDir(), "f")
	writeFile(t, src, "x")
	for _, args := range [][]string{
		{"run", "-c", "nap", "--node", "agent_0", "--", "true"},
		{"ssh", "-c", "nap", "--node", "agent_0"},
		{"send-file", "-c", "nap", "--node", "agent_0", src, "/tmp/f"},
		{"download", "-c", "nap", "--node", "agent_0", "/tmp/f", t.TempDir()},
	} {
		r := s.e2e(args...)
		expectCode(t, r, 255)
		oneErrorLine(t, r, `agent_0 of cluster "nap" is stopped: start it with `+"`e2e start -c nap`")
	}
	r = s.e2e("install", "-c", "nap", "--script", src)
	expectCode(t, r, 1)
	oneErrorLine(t, r, `master_0 of cluster "nap" is stopped`, "e2e start -c nap", "not running either: agent_0 (stopped)")

	for range 2 { // starting a running cluster succeeds
		r = s.e2e("start", "-c", "nap")
		expectCode(t, r, 0)
		if strings.TrimSpace(r.Stdout) != "nap" {
			t.Errorf("start printed %q on stdout, want the cluster id", r.Stdout)
		}
	}
	if row := listRow(t, s, "nap"); row.Status != "running" || row.Nodes["agent_0"] != cluster.NodeRunning {
		t.Errorf("list row after start %+v, want running", row)
	}
	if c := inspectJSON(t, s, "nap"); c.Status != "running" || nodeOf(t, c, "agent_0").SSH.Port == 0 {
		t.Errorf("inspect after start: %+v", c)
	}

	for _, verb := range []string{"stop", "start"} {
		r := s.e2e(verb, "-c", "ghost")
		expectCode(t, r, 2)
		oneErrorLine(t, r, `no such cluster "ghost"`)
	}
}

// dockerStates returns the engine's state of each container of cluster id.
func dockerStates(t *testing.T, id string) map[string]string {
	t.Helper()
	out := mustOutput(t, "docker", "ps", "-a", "--filter", "label=e2e.cluster-id="+id, "--format", "{{.Names}} {{.State}}")
	states := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, state, ok := strings.Cut(l, " "); ok {
			states[name] = state
		}
	}
	return states
}

// waitAnswers runs a command on a node until it answers: after a plain
// `docker start` sshd comes up a moment after the container. A host-key
// failure ends the wait at once.
func waitAnswers(t *testing.T, s *sandbox, id, ref string) testbin.Result {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := s.e2e("run", "-c", id, "--node", ref, "--", "hostname")
		if r.Code == 0 || strings.Contains(r.Stderr, "host key") || strings.Contains(r.Stderr, "known_hosts") || time.Now().After(deadline) {
			return r
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestNodesStopRestartVanishOnDocker: a node stopped by hand shows as
// stopped and refuses commands at once; started by hand it has a new port
// and answers with its pinned host key; e2e stop and e2e start bring the
// whole cluster down and back; a removed container shows as missing.
func TestNodesStopRestartVanishOnDocker(t *testing.T) {
	s := newSandbox(t)
	id := "nodes-" + randomSuffix(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "2", "--public-agents", "0")
	c := inspectJSON(t, s, id)
	knownHosts := filepath.Join(c.StateDir, "known_hosts")
	pinned, err := os.ReadFile(knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if want := "e2e-" + id + "-" + n.ID(); n.HostKeyAlias != want || !strings.Contains(string(pinned), "\n"+want+" ") && !strings.HasPrefix(string(pinned), want+" ") {
			t.Errorf("%s: host key alias %q, want %q pinned in known_hosts:\n%s", n.ID(), n.HostKeyAlias, want, pinned)
		}
	}
	oldPort := nodeOf(t, c, "agent_0").SSH.Port
	agent0 := "e2e-" + id + "-agent-0"

	mustOutput(t, "docker", "stop", agent0)
	row := listRow(t, s, id)
	if row.Status != "degraded (1 of 3 nodes not running)" || row.Nodes["agent_0"] != cluster.NodeStopped || row.Nodes["agent_1"] != cluster.NodeRunning {
		t.Errorf("list row %+v, want degraded with agent_0 stopped", row)
	}
	if r := s.e2e("list"); !strings.Contains(r.Stdout, "degraded (1 of 3 nodes not running)") {
		t.Errorf("list does not show the cluster degraded:\n%s", r.Stdout)
	}
	r := s.e2e("inspect", "-c", id)
	expectCode(t, r, 0)
	if f := inspectRow(t, r.Stdout, "agent_0"); f[1] != "stopped" || f[len(f)-1] != "-" {
		t.Errorf("inspect row of agent_0: %q, want stopped with no SSH endpoint", f)
	}
	if regexp.MustCompile(`:0\b`).MatchString(r.Stdout) {
		t.Errorf("inspect shows a port 0:\n%s", r.Stdout)
	}
	r = s.e2e("run", "-c", id, "--node", "agent_0", "--", "hostname")
	expectCode(t, r, 255)
	oneErrorLine(t, r, `agent_0 of cluster "`+id+`" is stopped`, "e2e start -c "+id)
	if strings.Contains(r.Stderr, "dial") || strings.Contains(r.Stderr, "127.0.0.1:") {
		t.Errorf("e2e dialled the stopped node: %s", r.Stderr)
	}
	if got := runOut(t, s, "-c", id, "--node", "agent_1", "--", "hostname"); got != "e2e-"+id+"-agent-1" {
		t.Errorf("a running node answers %q", got)
	}
	// --all runs on the running nodes and reports the stopped one as failed.
	r = s.e2e("run", "-c", id, "--all", "--", "hostname")
	expectCode(t, r, 255)
	for _, want := range []string{"master_0: e2e-" + id + "-master-0", "agent_1: e2e-" + id + "-agent-1"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("run --all did not print %q:\n%s", want, r.Stdout)
		}
	}
	if !strings.Contains(r.Stderr, `agent_0 of cluster "`+id+`" is stopped`) {
		t.Errorf("run --all does not name the stopped node:\n%s", r.Stderr)
	}

	// Started by hand: a new port, the same host key, no new entry.
	mustOutput(t, "docker", "start", agent0)
	r = waitAnswers(t, s, id, "agent_0")
	expectCode(t, r, 0)
	if got := strings.TrimSpace(r.Stdout); got != agent0 {
		t.Errorf("agent_0 answers %q", got)
	}
	if newPort := nodeOf(t, inspectJSON(t, s, id), "agent_0").SSH.Port; newPort == oldPort || newPort == 0 {
		t.Errorf("agent_0's SSH port is %d after docker start, was %d: the test needs a new port", newPort, oldPort)
	}
	if now, _ := os.ReadFile(knownHosts); string(now) != string(pinned) {
		t.Errorf("known_hosts changed from\n%s\nto\n%s", pinned, now)
	}

	// e2e stop and e2e start: the whole cluster down, and back.
	r = s.e2e("stop", "-c", id)
	expectCode(t, r, 0)
	if row := listRow(t, s, id); row.Status != "stopped" {
		t.Errorf("list after stop: %+v", row)
	}
	for name, state := range dockerStates(t, id) {
		if state != "exited" {
			t.Errorf("after e2e stop, %s is %s, want exited", name, state)
		}
	}
	r = s.e2e("start", "-c", id)
	expectCode(t, r, 0)
	lines := strings.Split(runOut(t, s, "-c", id, "--all", "--", "hostname"), "\n")
	slices.Sort(lines)
	want := []string{"agent_0: " + agent0, "agent_1: e2e-" + id + "-agent-1", "master_0: e2e-" + id + "-master-0"}
	if !slices.Equal(lines, want) {
		t.Errorf("run --all after start printed %q, want %q", lines, want)
	}
	if now, _ := os.ReadFile(knownHosts); string(now) != string(pinned) {
		t.Errorf("known_hosts changed from\n%s\nto\n%s", pinned, now)
	}

	// A container removed by hand: its node is missing.
	mustOutput(t, "docker", "rm", "-f", "-v", "e2e-"+id+"-agent-1")
	if row := listRow(t, s, id); row.Status != "degraded (1 of 3 nodes not running)" || row.Nodes["agent_1"] != cluster.NodeMissing {
		t.Errorf("list row %+v, want degraded with agent_1 missing", row)
	}
	if n := nodeOf(t, inspectJSON(t, s, id), "agent_1"); n.State != cluster.NodeMissing || n.SSH.Port != 0 {
		t.Errorf("agent_1 after docker rm: %+v, want missing with no SSH port", n)
	}
	r = s.e2e("run", "-c", id, "--node", "agent_1", "--", "true")
	expectCode(t, r, 255)
	oneErrorLine(t, r, `agent_1 of cluster "`+id+`" is missing`, "e2e destroy -c "+id)
	r = s.e2e("start", "-c", id)
	expectCode(t, r, 1)
	oneErrorLine(t, r, "did not start every node", `agent_1 of cluster "`+id+`" is missing`)
}

// TestOlderRecordOnDocker: a cluster recorded by an e2e that pinned host
// keys under the SSH address keeps working, and e2e start pins the keys
// the backend vouches for under the node's alias, so it survives new ports.
func TestOlderRecordOnDocker(t *testing.T) {
	s := newSandbox(t)
	id := "older-" + randomSuffix(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "0", "--public-agents", "0")
	c := inspectJSON(t, s, id)
	master := nodeOf(t, c, "master_0")

	// Turn the record into what an earlier e2e wrote: no alias, the key
	// under [127.0.0.1]:port.
	knownHosts := filepath.Join(c.StateDir, "known_hosts")
	b, err := os.ReadFile(knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	byAddress := strings.Replace(string(b), master.HostKeyAlias+" ", "[127.0.0.1]:"+strconv.Itoa(master.SSH.Port)+" ", 1)
	writeFile(t, knownHosts, byAddress)
	record := filepath.Join(c.StateDir, "cluster.json")
	meta, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	stripped := regexp.MustCompile(`,\s*"host_key_alias": "[^"]*"`).ReplaceAllString(string(meta), "")
	if stripped == string(meta) {
		t.Fatalf("cluster.json records no host_key_alias:\n%s", meta)
	}
	writeFile(t, record, stripped)
	if n := nodeOf(t, inspectJSON(t, s, id), "master_0"); n.HostKeyAlias != "" {
		t.Fatalf("the older record still has alias %q", n.HostKeyAlias)
	}
	if got := runOut(t, s, "-c", id, "--", "hostname"); got != "e2e-"+id+"-master-0" {
		t.Errorf("the older record: master_0 answers %q", got)
	}

	// A restart gives the node a new port; e2e start pins its key under
	// the alias and every node answers.
	expectCode(t, s.e2e("stop", "-c", id), 0)
	expectCode(t, s.e2e("start", "-c", id), 0)
	n := nodeOf(t, inspectJSON(t, s, id), "master_0")
	if n.HostKeyAlias != "e2e-"+id+"-master_0" || n.SSH.Port == master.SSH.Port {
		t.Errorf("after start: alias %q, port %d (was %d)", n.HostKeyAlias, n.SSH.Port, master.SSH.Port)
	}
	if got := runOut(t, s, "-c", id, "--", "hostname"); got != "e2e-"+id+"-master-0" {
		t.Errorf("after start: master_0 answers %q", got)
	}
	now, _ := os.ReadFile(knownHosts)
	if !strings.HasPrefix(string(now), byAddress) || !strings.Contains(string(now), "\ne2e-"+id+"-master_0 ssh-ed25519 ") {
		t.Errorf("known_hosts after start:\n%s\nwant the old entry kept and the key pinned under the alias", now)
	}
}

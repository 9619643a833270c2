package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/testbin"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestSSHProxyCommand: with --ssh-proxy-command the core never dials a
// node: it speaks SSH over the command's stdin and stdout, for create's
// login, run, send-file and download, with the node's tokens expanded. The
// nodes' addresses here are closed ports; only the command knows where
// each sshd is.
func TestSSHProxyCommand(t *testing.T) {
	key, authorized := userKey(t)
	ms := machines(t, 2, authorized)
	s := newSandbox(t)
	e2e := buildAll(t, t.TempDir())
	run := func(args ...string) testbin.Result { return testbin.Run(t, s.env(), e2e, args...) }

	dir := t.TempDir()
	// Ports 1 and 2 of 127.0.0.1 stand for the nodes' addresses; the
	// known_hosts file pins each machine's key under them.
	var mapping, pins strings.Builder
	for i, m := range ms {
		fmt.Fprintf(&mapping, "%d %d\n", i+1, m.Endpoint.Port)
		pins.WriteString(knownhosts.Line([]string{knownhosts.Normalize("127.0.0.1:" + strconv.Itoa(i+1))}, m.HostKey) + "\n")
	}
	writeFile(t, filepath.Join(dir, "map"), mapping.String())
	kh := filepath.Join(dir, "known_hosts")
	writeFile(t, kh, pins.String())
	proxy := filepath.Join(dir, "proxy")
	writeFile(t, proxy, `#!/bin/bash
# proxy HOST PORT USER NODE: joins stdin and stdout to the sshd standing in for PORT.
echo "$4 $3@$1:$2" >> "`+dir+`/log"
port=$(awk -v p="$2" '$1 == p {print $2}' "`+dir+`/map")
[ -n "$port" ] || { echo "no node at $1:$2" >&2; exit 1; }
exec 3<>/dev/tcp/127.0.0.1/$port || exit 1
cat <&3 &
exec cat >&3
`)
	if err := os.Chmod(proxy, 0o755); err != nil {
		t.Fatal(err)
	}

	r := run("create", "--backend", "existing", "-c", "px", "-o", "masters=127.0.0.1:1", "-o", "agents=127.0.0.1:2",
		"--ssh-user", "root", "--ssh-key", key, "--known-hosts", kh, "--ssh-proxy-command", proxy+" %h %p %r %n")
	expectCode(t, r, 0)

	r = run("run", "-c", "px", "--all", "--", "sh", "-c", `echo "${SSH_CONNECTION##* }"`)
	expectCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	sort.Strings(lines)
	want := fmt.Sprintf("agent_0: %d\nmaster_0: %d", ms[1].Endpoint.Port, ms[0].Endpoint.Port)
	if strings.Join(lines, "\n") != want {
		t.Errorf("run --all printed:\n%s\nwant:\n%s", r.Stdout, want)
	}
	src := filepath.Join(t.TempDir(), "payload.txt")
	writeFile(t, src, "through the proxy\n")
	dst := filepath.Join(t.TempDir(), "payload.txt")
	expectCode(t, run("send-file", "-c", "px", "--node", "agent_0", src, dst), 0)
	back := filepath.Join(t.TempDir(), "back.txt")
	expectCode(t, run("download", "-c", "px", "--node", "agent_0", dst, back), 0)
	if b, err := os.ReadFile(back); err != nil || string(b) != "through the proxy\n" {
		t.Errorf("downloaded %q, %v", b, err)
	}

	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	for _, line := range []string{"master_0 root@127.0.0.1:1", "agent_0 root@127.0.0.1:2"} {
		if !strings.Contains(string(log), line+"\n") {
			t.Errorf("the proxy command was never run as %q; its log:\n%s", line, log)
		}
	}

	r = run("inspect", "-c", "px", "--json")
	expectCode(t, r, 0)
	var c cluster.Cluster
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil {
		t.Fatal(err)
	}
	if c.SSHProxyCommand != proxy+" %h %p %r %n" {
		t.Errorf("inspect shows ssh_proxy_command %q", c.SSHProxyCommand)
	}
	expectCode(t, run("forget", "-c", "px"), 0)

	// A token e2e does not know is refused before anything is made.
	r = run("create", "--backend", "existing", "-c", "bad", "-o", "masters=127.0.0.1:1",
		"--ssh-key", key, "--known-hosts", kh, "--ssh-proxy-command", "nc %h %z")
	expectCode(t, r, 2)
	oneErrorLine(t, r, "--ssh-proxy-command", "%z")
	if recs := s.records(); len(recs) != 0 {
		t.Errorf("records after a refused create: %v", recs)
	}
}

package ssh_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	"github.com/e2e-tool/e2e/internal/testbin"
	gossh "golang.org/x/crypto/ssh"
)

func TestExpandProxyCommand(t *testing.T) {
	tokens := ssh.ProxyTokens{Host: "203.0.113.9", Port: 2222, User: "admin", Node: "agent_1"}
	for _, tc := range []struct {
		in, want, err string
	}{
		{"ssh -W %h:%p bastion", "ssh -W 203.0.113.9:2222 bastion", ""},
		{"connect %r@%h %n", "connect admin@203.0.113.9 agent_1", ""},
		{"printf 100%%", "printf 100%", ""},
		{"no tokens", "no tokens", ""},
		{"nc %x", "", "unknown token %x"},
		{"nc %h %", "", "lone %"},
	} {
		got, err := ssh.ExpandProxyCommand(tc.in, tokens)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Expand(%q) error = %v, want one with %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// relay is a ProxyCommand that records its pid and arguments in dir and
// joins its stdin and stdout to 127.0.0.1:PORT, where PORT is read from
// the file dir/port.
func relay(t *testing.T, dir string) string {
	t.Helper()
	script := filepath.Join(dir, "relay")
	if err := os.WriteFile(script, []byte(`#!/bin/bash
echo $$ > "`+dir+`/pid"
echo "$*" > "`+dir+`/args"
port=$(cat "`+dir+`/port") || exit 1
exec 3<>/dev/tcp/127.0.0.1/$port || exit 1
cat <&3 &
exec cat >&3
`), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

func TestDialThroughProxyCommand(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	script := relay(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "port"), []byte(strconv.Itoa(srv.Endpoint.Port)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: only the ProxyCommand can reach sshd.
	tokens := ssh.ProxyTokens{Host: "127.0.0.1", Port: 1, User: "root", Node: "master_0"}
	cmd, err := ssh.ExpandProxyCommand(script+" %h %p %r %n", tokens)
	if err != nil {
		t.Fatal(err)
	}
	ep := ssh.Endpoint{Host: "127.0.0.1", Port: 1, User: "root", HostKeyAlias: alias, ProxyCommand: cmd}
	c, err := ssh.Dial(testContext(t, 20*time.Second), ep, ssh.Config{
		Signers: []gossh.Signer{srv.Signer}, KnownHosts: []string{aliasKnownHosts(t, srv.HostKey)},
	})
	if err != nil {
		t.Fatalf("Dial through the ProxyCommand: %v", err)
	}
	_, out, _ := run(t, c, ssh.Cmd{Argv: []string{"echo", "through the proxy"}})
	if out != "through the proxy\n" {
		t.Errorf("output %q", out)
	}
	// Files go through it too.
	local := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(local, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(t.TempDir(), "g")
	if err := c.Upload(testContext(t, 20*time.Second), local, remote, nil); err != nil {
		t.Fatalf("Upload through the ProxyCommand: %v", err)
	}
	if b, err := os.ReadFile(remote); err != nil || string(b) != "payload" {
		t.Errorf("uploaded %q, %v", b, err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if got := strings.TrimSpace(string(args)); got != "127.0.0.1 1 root master_0" {
		t.Errorf("the ProxyCommand got arguments %q, want the node's host, port, user and reference", got)
	}
	pidText, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatalf("pid file: %q", pidText)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !testbin.Gone(pid, 10*time.Second) {
		t.Errorf("ProxyCommand process %d still runs after Close", pid)
	}
}

func TestProxyCommandFailureIsExplained(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	ep := ssh.Endpoint{Host: "127.0.0.1", Port: 1, User: "root",
		ProxyCommand: "sh -c 'echo cannot reach the bastion >&2; exit 3'"}
	_, err := ssh.Dial(testContext(t, 20*time.Second), ep, ssh.Config{
		Signers: []gossh.Signer{srv.Signer}, KnownHosts: []string{sshdtest.KnownHostsFile(t, srv)},
	})
	if err == nil {
		t.Fatal("Dial through a failing ProxyCommand succeeded")
	}
	for _, want := range []string{"cannot reach the bastion", "exit status 3", "ProxyCommand"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// A ProxyCommand that fails while the node boots is tried again, a new
// process each time, for Config.RetryFor.
func TestProxyCommandRetriedWhileNodeBoots(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	script := relay(t, dir)
	tries := filepath.Join(dir, "tries")
	// The port appears only at the third try. (The command runs after
	// exec, as OpenSSH runs it: a list needs a shell of its own.)
	cmd := fmt.Sprintf(`sh -c 'echo x >> %s; [ $(wc -l < %s) -ge 3 ] && echo %d > %s/port; exec %s'`,
		tries, tries, srv.Endpoint.Port, dir, script)
	ep := ssh.Endpoint{Host: "127.0.0.1", Port: 1, User: "root", HostKeyAlias: alias, ProxyCommand: cmd}
	c, err := ssh.Dial(testContext(t, 30*time.Second), ep, ssh.Config{
		Signers: []gossh.Signer{srv.Signer}, KnownHosts: []string{aliasKnownHosts(t, srv.HostKey)}, RetryFor: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	b, _ := os.ReadFile(tries)
	if n := strings.Count(string(b), "x"); n != 3 {
		t.Errorf("the ProxyCommand ran %d times, want 3", n)
	}
}

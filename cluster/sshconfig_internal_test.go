package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteSSHConfig(t *testing.T) {
	nodes := []Node{
		{Role: RoleMaster, Index: 0, State: NodeRunning, HostKeyAlias: "e2e-x-master_0",
			SSH: SSHEndpoint{Host: "127.0.0.1", Port: 32001, User: "root"}},
		{Role: RoleAgent, Index: 0, State: NodeStopped, SSH: SSHEndpoint{Host: "127.0.0.1", User: "root"}},
		{Role: RoleAgent, Index: 1, State: NodeRunning, SSH: SSHEndpoint{Host: "10.0.0.7", Port: 22, User: "admin"}},
	}
	for _, tt := range []struct {
		name   string
		access sshAccess
		want   []string // lines, in order
		not    []string
		err    string
	}{
		{
			name:   "generated key, pinned keys",
			access: sshAccess{keyPath: "/state/x/id_ed25519", knownHosts: []string{"/state/x/known_hosts"}},
			want: []string{"Host master_0", "  HostName 127.0.0.1", "  Port 32001", "  User root", "  IdentityFile /state/x/id_ed25519",
				"  IdentitiesOnly yes", "  UserKnownHostsFile /state/x/known_hosts", "  StrictHostKeyChecking yes",
				"  HostKeyAlias e2e-x-master_0", "# agent_0 is stopped: it has no SSH endpoint (e2e start -c x)",
				"Host agent_1", "  HostName 10.0.0.7", "  Port 22", "  User admin"},
			not: []string{"Host agent_0", "ProxyCommand"},
		},
		{
			name: "agent, user's known hosts with a space, proxy command",
			access: sshAccess{agent: true, knownHosts: []string{"/state/x/known_hosts", "/home/u/my hosts"},
				proxyCommand: "ssh -W %h:%p -o Tag=%n bastion # 100%% %n"},
			want: []string{`  UserKnownHostsFile /state/x/known_hosts "/home/u/my hosts"`,
				"  ProxyCommand ssh -W %h:%p -o Tag=master_0 bastion # 100%% master_0",
				"  ProxyCommand ssh -W %h:%p -o Tag=agent_1 bastion # 100%% agent_1"},
			not: []string{"IdentityFile", "IdentitiesOnly"},
		},
		{
			name:   "a value OpenSSH cannot read",
			access: sshAccess{keyPath: `/state/"x"/id`, knownHosts: []string{"/k"}},
			err:    "cannot be written in an OpenSSH config",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cluster{ID: "x", Backend: "docker", Nodes: nodes, access: tt.access}
			var b strings.Builder
			err := c.WriteSSHConfig(&b)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rest := b.String()
			for _, line := range tt.want {
				i := strings.Index(rest, line+"\n")
				if i < 0 {
					t.Fatalf("config lacks %q (in order):\n%s", line, b.String())
				}
				rest = rest[i+len(line):]
			}
			for _, s := range tt.not {
				if strings.Contains(b.String(), s) {
					t.Errorf("config has %q:\n%s", s, b.String())
				}
			}
		})
	}
}

// TestWriteSSHConfigWithOpenSSH: the real OpenSSH client reads the paths
// of a state directory holding % and a space as they are (not as its
// tokens), and a ProxyCommand with double quotes as it was given.
func TestWriteSSHConfigWithOpenSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatal("the OpenSSH client is needed (apt-get install openssh-client)")
	}
	state := "/state/home %h x/c"
	proxy := `bash -c "exec 3<>/dev/tcp/%h/%p; cat <&3 & exec cat >&3"`
	c := &Cluster{ID: "x", Backend: "docker", Nodes: []Node{{Role: RoleMaster, State: NodeRunning,
		SSH: SSHEndpoint{Host: "127.0.0.1", Port: 32001, User: "root"}}},
		access: sshAccess{keyPath: state + "/id_ed25519", knownHosts: []string{state + "/known_hosts"}, proxyCommand: proxy}}
	var b strings.Builder
	if err := c.WriteSSHConfig(&b); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh", "-G", "-F", cfg, "master_0").Output()
	if err != nil {
		t.Fatalf("ssh -G: %v\n%s", err, b.String())
	}
	for _, want := range []string{
		// ssh -G expands the tokens of UserKnownHostsFile (not of
		// IdentityFile, which it prints as written: %% for %).
		"userknownhostsfile " + state + "/known_hosts",
		"identityfile /state/home %%h x/c/id_ed25519",
		"proxycommand " + proxy,
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("ssh -G lacks %q:\n%s\nconfig:\n%s", want, out, b.String())
		}
	}
}

func TestCheckProxyCommandLineBreak(t *testing.T) {
	for _, cmd := range []string{"nc %h %p\nrm -rf x", "nc %h %p\r"} {
		if err := checkProxyCommand(cmd); err == nil || !IsInvalid(err) || !strings.Contains(err.Error(), "line break") {
			t.Errorf("checkProxyCommand(%q) = %v, want bad input naming the line break", cmd, err)
		}
	}
	if err := checkProxyCommand(`bash -c "exec 3<>/dev/tcp/%h/%p"`); err != nil {
		t.Errorf("a command with double quotes: %v, want it taken", err)
	}
}

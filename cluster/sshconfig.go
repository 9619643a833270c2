package cluster

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteSSHConfig writes an OpenSSH client configuration for the cluster's
// nodes, as `vagrant ssh-config` does: a Host per node, named by its id
// (master_0, agent_1, ...), with its HostName, Port and User, the key e2e
// logs in with (IdentityFile, IdentitiesOnly; none when the cluster logs
// in with the user's ssh-agent), the cluster's known_hosts (and the known
// hosts files given at creation) as UserKnownHostsFile with
// StrictHostKeyChecking yes, the node's HostKeyAlias when its keys are
// pinned under one, and the cluster's ProxyCommand, if any (its %n token
// replaced by the node's id; %h, %p, %r and %% mean what they mean to
// OpenSSH). So `ssh -F FILE agent_0`, `scp -F FILE`, `rsync -e 'ssh -F
// FILE'` and Ansible reach the nodes with the same keys and host keys as
// e2e. A node that is not running gets a comment instead of a Host.
//
// Values with spaces are quoted, and a % in a value OpenSSH expands
// tokens in (HostName, IdentityFile, UserKnownHostsFile) is written %%,
// so a path under an E2E_HOME holding % is read as it is. The
// ProxyCommand is written as it is (OpenSSH runs the rest of the line
// with the shell, quotes included). A value holding a line break, or a
// double quote in any other value, cannot be written in the format and
// is an error.
func (c *Cluster) WriteSSHConfig(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# OpenSSH config of e2e cluster %s (backend %s): ssh -F FILE NODE\n", c.ID, c.Backend)
	for _, n := range c.Nodes {
		if !n.Running() || n.SSH.Port == 0 {
			fmt.Fprintf(&b, "\n# %s is %s: it has no SSH endpoint (e2e start -c %s)\n", n.ID(), n.State, c.ID)
			continue
		}
		fmt.Fprintf(&b, "\nHost %s\n", n.ID())
		lines := [][2]string{
			{"HostName", escapeTokens(n.SSH.Host)},
			{"Port", strconv.Itoa(n.SSH.Port)},
			{"User", n.SSH.User},
		}
		if c.access.keyPath != "" {
			lines = append(lines, [2]string{"IdentityFile", escapeTokens(c.access.keyPath)}, [2]string{"IdentitiesOnly", "yes"})
		}
		for _, f := range c.access.knownHosts {
			if strings.ContainsAny(f, "\"\r\n") {
				return fmt.Errorf("cluster %q: the known_hosts file %q cannot be written in an OpenSSH config", c.ID, f)
			}
		}
		lines = append(lines, [2]string{"UserKnownHostsFile", escapeTokens(strings.Join(quoteAll(c.access.knownHosts), " "))},
			[2]string{"StrictHostKeyChecking", "yes"})
		if n.HostKeyAlias != "" {
			lines = append(lines, [2]string{"HostKeyAlias", n.HostKeyAlias})
		}
		if c.access.proxyCommand != "" {
			lines = append(lines, [2]string{"ProxyCommand", expandNodeToken(c.access.proxyCommand, n.ID())})
		}
		for _, l := range lines {
			if strings.ContainsAny(l[1], "\r\n") || l[0] != "UserKnownHostsFile" && l[0] != "ProxyCommand" && strings.Contains(l[1], `"`) {
				return fmt.Errorf("cluster %q: the %s of %s (%q) cannot be written in an OpenSSH config", c.ID, l[0], n.ID(), l[1])
			}
			v := l[1]
			if l[0] != "UserKnownHostsFile" && l[0] != "ProxyCommand" {
				v = quote(v)
			}
			fmt.Fprintf(&b, "  %s %s\n", l[0], v)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// quote double-quotes a value with spaces, as ssh_config reads it.
func quote(v string) string {
	if strings.ContainsAny(v, " \t") {
		return `"` + v + `"`
	}
	return v
}

// escapeTokens writes each % of a value as %%, which OpenSSH's token
// expansion reads back as one %.
func escapeTokens(v string) string { return strings.ReplaceAll(v, "%", "%%") }

func quoteAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = quote(v)
	}
	return out
}

// expandNodeToken replaces the %n token of a proxy command (e2e's: the
// node's id) and keeps every other token, %% included, for OpenSSH.
func expandNodeToken(cmd, node string) string {
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] == '%' && i+1 < len(cmd) {
			switch cmd[i+1] {
			case 'n':
				b.WriteString(node)
				i++
				continue
			case '%':
				b.WriteString("%%")
				i++
				continue
			}
		}
		b.WriteByte(cmd[i])
	}
	return b.String()
}

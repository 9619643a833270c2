package cluster

import (
	"fmt"
	"strings"

	"github.com/e2e-tool/e2e/internal/ssh"
)

// checkProxyCommand refuses a ProxyCommand whose % tokens e2e does not
// know, before anything is made.
func checkProxyCommand(command string) error {
	if command == "" {
		return nil
	}
	if strings.ContainsAny(command, "\r\n") {
		return invalidf("--ssh-proxy-command %q: a line break cannot be written in an OpenSSH config (e2e ssh-config): give the command on one line", command)
	}
	if _, err := ssh.ExpandProxyCommand(command, ssh.ProxyTokens{}); err != nil {
		return invalidf("--ssh-proxy-command %q: %v", command, err)
	}
	return nil
}

// nodeEndpoint is where the core logs in to n: its SSH endpoint and, when
// the cluster has a ProxyCommand, that command with n's tokens (%h %p %r
// %n) expanded, so that the connection goes through it instead of a dial.
func (c *Cluster) nodeEndpoint(n Node) (ssh.Endpoint, error) {
	ep := endpoint(n)
	if c.access.proxyCommand == "" {
		return ep, nil
	}
	cmd, err := ssh.ExpandProxyCommand(c.access.proxyCommand, ssh.ProxyTokens{
		Host: n.SSH.Host, Port: n.SSH.Port, User: n.SSH.User, Node: n.ID()})
	if err != nil {
		return ep, &InvalidError{Err: fmt.Errorf("cluster %q: ssh proxy command: %w", c.ID, err)}
	}
	ep.ProxyCommand = cmd
	return ep, nil
}

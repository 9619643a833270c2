// Package ssh is the core's only way onto a node: commands (with quoting,
// environment, sudo, pty and exact exit status), SFTP file transfer, host-key
// pinning in known_hosts, retrying while sshd comes up, and fan-out to many
// nodes with prefixed output.
//
// One Client is one SSH connection to one node, reused for every command and
// transfer on it. Remote commands assume a POSIX login shell (sh, bash, dash,
// zsh), as sshd runs them through it.
package ssh

import (
	"net"
	"strconv"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Endpoint is where and as whom the core logs in to a node.
type Endpoint struct {
	Host string
	Port int
	User string
	// HostKeyAlias, when set, is the name the host key is looked up under
	// in the known_hosts files, and recorded under by Config.AcceptNew,
	// instead of Host and Port: OpenSSH's HostKeyAlias. A key pinned under
	// the node's identity stays valid when its address or port changes (a
	// restarted container gets a new published port).
	HostKeyAlias string
	// ProxyCommand, when set, is a command line (its % tokens already
	// expanded, see ExpandProxyCommand) whose stdin and stdout carry the
	// SSH connection instead of a TCP connection to Host and Port, as
	// OpenSSH's ProxyCommand: a bastion's `ssh -W %h:%p`, an SSM session.
	ProxyCommand string
}

// Addr is the endpoint's host:port, with IPv6 addresses bracketed.
func (e Endpoint) Addr() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// hostKeyName is what known_hosts entries of the endpoint name, in the
// host:port form the knownhosts package looks up: the alias on the default
// port (so entries carry the bare alias, as OpenSSH writes them), else the
// address.
func (e Endpoint) hostKeyName() string {
	if e.HostKeyAlias != "" {
		return net.JoinHostPort(e.HostKeyAlias, "22")
	}
	return e.Addr()
}

// Config says how to authenticate and which host keys to trust.
type Config struct {
	// Signers are the keys offered, in order.
	Signers []gossh.Signer
	// KnownHosts are known_hosts files; a host key must match an entry in
	// one of them. Missing files count as empty.
	KnownHosts []string
	// AcceptNew accepts a host with no entry in any file and appends its key
	// to KnownHosts[0] (StrictHostKeyChecking=accept-new). A changed key is
	// always refused.
	AcceptNew bool
	// ConnectTimeout bounds each attempt (TCP connect and SSH handshake);
	// 0 means 10s.
	ConnectTimeout time.Duration
	// RetryFor keeps retrying, with exponential backoff from 100ms capped at
	// 2s, while sshd is not up: connection refused or reset, EOF or a timeout
	// before or during the handshake. 0 means a single attempt.
	RetryFor time.Duration
}

const (
	defaultConnectTimeout = 10 * time.Second
	firstBackoff          = 100 * time.Millisecond
	maxBackoff            = 2 * time.Second
	// keepAliveInterval is how often an idle connection is probed, so a node
	// that vanished (terminated instance, dropped NAT entry) fails a running
	// command instead of hanging it forever (like ServerAliveInterval).
	keepAliveInterval = 15 * time.Second
	keepAliveTimeout  = 45 * time.Second
	// maxSessions bounds concurrent command sessions per connection: sshd's
	// default MaxSessions is 10, and the SFTP session takes one more.
	maxSessions = 8
)

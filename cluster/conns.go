package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/internal/transfer"
	gossh "golang.org/x/crypto/ssh"
)

// sshAccess is what the core needs to reach a cluster's nodes.
type sshAccess struct {
	keyPath    string
	agent      bool
	knownHosts []string
	// proxyCommand carries SSH instead of a dial (--ssh-proxy-command).
	proxyCommand string
}

func accessOf(e *Manager, meta state.Metadata) sshAccess {
	return sshAccess{keyPath: meta.SSHKeyPath, agent: meta.SSHAgent,
		knownHosts:   append([]string{e.store.KnownHostsPath(meta.ID)}, meta.KnownHosts...),
		proxyCommand: meta.SSHProxyCommand}
}

// config builds the SSH client configuration; closers must be closed after
// the connections that use it.
func (a sshAccess) config(acceptNew bool, retryFor time.Duration) (ssh.Config, []io.Closer, error) {
	cfg := ssh.Config{KnownHosts: a.knownHosts, AcceptNew: acceptNew, RetryFor: retryFor}
	var closers []io.Closer
	if a.keyPath != "" {
		signer, err := ssh.LoadKey(a.keyPath)
		if err != nil {
			return cfg, nil, err
		}
		cfg.Signers = append(cfg.Signers, signer)
	}
	if a.agent {
		signers, closer, err := ssh.AgentSigners()
		if err != nil {
			return cfg, nil, err
		}
		cfg.Signers = append(cfg.Signers, signers...)
		closers = append(closers, closer)
	}
	if len(cfg.Signers) == 0 {
		return cfg, nil, errors.New("no SSH key to log in with: give --ssh-key PATH or --ssh-agent when creating the cluster")
	}
	return cfg, closers, nil
}

// conns holds one SSH connection per node, reused for everything done on
// that node until Cluster.Close.
type conns struct {
	mu      sync.Mutex
	clients map[string]*ssh.Client
	dialing map[string]chan struct{}
	cfg     *ssh.Config
	closers []io.Closer
	// plugin serves the exec transport, when the cluster uses it.
	plugin *plugin.Plugin
}

// connect returns the node's connection, dialling it on first use.
func (c *Cluster) connect(ctx context.Context, n Node) (*ssh.Client, error) {
	if err := n.notRunning(); err != nil {
		return nil, err
	}
	key := n.ID()
	for {
		c.conns.mu.Lock()
		if cl, ok := c.conns.clients[key]; ok {
			c.conns.mu.Unlock()
			return cl, nil
		}
		if wait, ok := c.conns.dialing[key]; ok {
			c.conns.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if c.conns.cfg == nil {
			cfg, closers, err := c.access.config(false, 0)
			if err != nil {
				c.conns.mu.Unlock()
				return nil, &InvalidError{Err: fmt.Errorf("cluster %q: %w", c.ID, err)}
			}
			c.conns.cfg, c.conns.closers = &cfg, closers
		}
		if c.conns.clients == nil {
			c.conns.clients, c.conns.dialing = map[string]*ssh.Client{}, map[string]chan struct{}{}
			c.manager.track(c)
		}
		done := make(chan struct{})
		c.conns.dialing[key] = done
		cfg := *c.conns.cfg
		c.conns.mu.Unlock()

		ep, err := c.nodeEndpoint(n)
		var cl *ssh.Client
		if err == nil {
			cl, err = ssh.Dial(ctx, ep, cfg)
		}
		c.conns.mu.Lock()
		delete(c.conns.dialing, key)
		if err == nil {
			c.conns.clients[key] = cl
		}
		c.conns.mu.Unlock()
		close(done)
		if err != nil {
			return nil, nodeError(n, err)
		}
		return cl, nil
	}
}

// endpoint is where the core dials a node, and the name its host key is
// checked under: the node's alias when its keys are pinned under one,
// else its address (keys the backend did not vouch for, clusters recorded
// before aliases).
func endpoint(n Node) ssh.Endpoint {
	return ssh.Endpoint{Host: n.SSH.Host, Port: n.SSH.Port, User: n.SSH.User, HostKeyAlias: n.HostKeyAlias}
}

// nodeError names the node in an SSH error.
func nodeError(n Node, err error) error {
	return fmt.Errorf("%s (%s@%s:%d): %w", n.ID(), n.SSH.User, n.SSH.Host, n.SSH.Port, err)
}

// Close closes the cluster's SSH connections and stops the plugin of its
// exec transport. The cluster stays usable: the next command dials again.
func (c *Cluster) Close() error {
	if c.manager != nil {
		c.manager.untrack(c)
	}
	c.conns.mu.Lock()
	clients, closers, p := c.conns.clients, c.conns.closers, c.conns.plugin
	c.conns.clients, c.conns.closers, c.conns.cfg, c.conns.plugin = nil, nil, nil, nil
	c.conns.mu.Unlock()
	if p != nil {
		p.Kill()
	}
	var errs []error
	for _, cl := range clients {
		errs = append(errs, cl.Close())
	}
	for _, cl := range closers {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

// verifySSH logs in to every node with the cluster's credentials, retrying
// while sshd starts, and records host keys met for the first time when
// acceptNew. It returns the first failure, naming the node; a node that is
// not running is one.
func (c *Cluster) verifySSH(ctx context.Context, acceptNew bool, retryFor time.Duration) error {
	cfg, closers, err := c.access.config(acceptNew, retryFor)
	if err != nil {
		return &InvalidError{Err: err}
	}
	defer func() {
		for _, cl := range closers {
			_ = cl.Close()
		}
	}()
	errs := ssh.FanOut(ctx, len(c.Nodes), 0, func(ctx context.Context, i int) error {
		n := c.Nodes[i]
		if err := n.notRunning(); err != nil {
			return err
		}
		ep, err := c.nodeEndpoint(n)
		if err != nil {
			return err
		}
		cl, err := ssh.Dial(ctx, ep, cfg)
		var unknown *ssh.UnknownHostError
		if errors.As(err, &unknown) {
			return &unknownHostKeyError{node: n, userFiles: c.access.knownHosts[1:], err: unknown}
		}
		if err != nil {
			return nodeError(n, err)
		}
		return cl.Close()
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sshUsageError marks errors the user can fix with their SSH flags as
// invalid input.
func sshUsageError(err error) error {
	var (
		auth    *ssh.AuthError
		changed *ssh.HostKeyChangedError
		unknown *ssh.UnknownHostError
	)
	switch {
	case errors.As(err, &unknown) || errors.As(err, &auth) || errors.As(err, &changed):
		return &InvalidError{Err: err}
	}
	return err
}

// unknownHostKeyError is a node's host key that no known_hosts file has,
// met while checking SSH on a new cluster, said in one sentence: the node,
// its address, the key, the user's known_hosts files (the cluster's own,
// which only e2e writes, is not named) and the two ways out.
type unknownHostKeyError struct {
	node      Node
	userFiles []string
	err       *ssh.UnknownHostError
}

func (e *unknownHostKeyError) Error() string {
	key := "no key"
	if e.err.Key != nil {
		key = e.err.Key.Type() + " " + gossh.FingerprintSHA256(e.err.Key)
	}
	where := "which no known_hosts file has (there is no ~/.ssh/known_hosts)"
	if len(e.userFiles) > 0 {
		files := make([]string, len(e.userFiles))
		for i, f := range e.userFiles {
			files[i] = tildePath(f)
		}
		where = "which is not in " + strings.Join(files, " or ")
	}
	return fmt.Sprintf("%s at %s presents host key %s, %s: give a known_hosts file that has it with --known-hosts FILE, or accept it on first contact with --accept-new-host-keys",
		e.node.ID(), net.JoinHostPort(e.node.SSH.Host, fmt.Sprint(e.node.SSH.Port)), key, where)
}

// Unwrap returns the SSH layer's error.
func (e *unknownHostKeyError) Unwrap() error { return e.err }

// tildePath writes a path under the home directory as ~/..., as a user
// types it.
func tildePath(path string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return path
	}
	if rel, ok := strings.CutPrefix(path, home+string(filepath.Separator)); ok {
		return "~/" + rel
	}
	return path
}

// publicKeyOf returns the authorized_keys line of a key, without the
// trailing newline.
func publicKeyOf(signer gossh.Signer) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
}

// DialContext opens a connection from the node to addr (network "tcp",
// addr "host:port"), through the node's SSH connection as OpenSSH's -W
// does, so that a client here reaches what listens on the node's network
// even where its addresses are not routable from here (an HTTP client's
// Transport.DialContext, for example). It always goes through SSH, also on
// the exec transport.
func (n Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.cluster == nil {
		return nil, errors.New("node was not returned by a cluster.Manager")
	}
	cl, err := n.cluster.connect(ctx, n)
	if err != nil {
		return nil, err
	}
	return cl.DialContext(ctx, network, addr)
}

// transport is how the core reaches a node: over SSH (sshNode), or
// through the backend's exec transport (execNode), with one contract.
type transport interface {
	run(ctx context.Context, cmd ssh.Cmd) (ExitStatus, error)
	upload(ctx context.Context, p *transfer.Plan, dst string, progress Progress) error
	download(ctx context.Context, src, dst string, progress Progress) error
}

// transport returns the node's transport, dialling it on first use; its
// errors, including a node that is not running, are *SSHError.
func (n Node) transport(ctx context.Context) (transport, error) {
	if err := n.notRunning(); err != nil {
		return nil, &SSHError{Err: err}
	}
	if n.cluster.usesExec() {
		x, err := n.cluster.execNode(ctx, n)
		if err != nil {
			return nil, &SSHError{Err: err}
		}
		return x, nil
	}
	cl, err := n.cluster.connect(ctx, n)
	if err != nil {
		return nil, &SSHError{Err: err}
	}
	return sshNode{cl}, nil
}

// sshNode is a node's SSH connection as a transport.
type sshNode struct{ cl *ssh.Client }

func (s sshNode) run(ctx context.Context, cmd ssh.Cmd) (ExitStatus, error) {
	st, err := s.cl.Run(ctx, cmd)
	return ExitStatus{Code: st.Code, Signal: st.Signal}, err
}

func (s sshNode) upload(ctx context.Context, p *transfer.Plan, dst string, progress Progress) error {
	return s.cl.UploadPlan(ctx, p, dst, ssh.Progress(progress))
}

func (s sshNode) download(ctx context.Context, src, dst string, progress Progress) error {
	return s.cl.Download(ctx, src, dst, ssh.Progress(progress))
}

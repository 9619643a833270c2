package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/internal/transfer"
	gossh "golang.org/x/crypto/ssh"
)

// Command is what to run on a node.
type Command struct {
	// Argv is quoted for the remote shell; Shell is a command line used as
	// it is. Give exactly one.
	Argv  []string
	Shell string
	// Env is set for the command (through `env`, since sshd drops most
	// variables a client sends).
	Env map[string]string
	// User runs the command as another user (sudo -u); Sudo runs it as root.
	User string
	Sudo bool
	// TTY asks for a terminal (interactive programs).
	TTY    bool
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// ExitStatus is how a remote command ended: Code is its exit code, 128+N
// when it died of signal N (then Signal names it, such as "TERM").
type ExitStatus struct {
	Code   int
	Signal string
}

// Progress reports a transfer: bytes done of total. It is never called
// concurrently for one transfer.
type Progress = transfer.Progress

// sshAccess is what the core needs to reach a cluster's nodes.
type sshAccess struct {
	keyPath    string
	agent      bool
	knownHosts []string
	// proxyCommand carries SSH instead of a dial (--ssh-proxy-command).
	proxyCommand string
}

func accessOf(e *Client, meta state.Metadata) sshAccess {
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
	key := n.Ref()
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
			c.client.track(c)
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
	return fmt.Errorf("%s (%s@%s:%d): %w", n.Ref(), n.SSH.User, n.SSH.Host, n.SSH.Port, err)
}

// Close closes the cluster's SSH connections and stops the plugin of its
// exec transport. The cluster stays usable: the next command dials again.
func (c *Cluster) Close() error {
	if c.client != nil {
		c.client.untrack(c)
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

// SSHError marks a failure of SSH itself (not of the remote command); the
// CLI exits 255 for it, as ssh does.
type SSHError struct{ Err error }

func (e *SSHError) Error() string { return e.Err.Error() }
func (e *SSHError) Unwrap() error { return e.Err }

// sshCmd is cmd as internal/ssh runs it (and the exec transport too).
func (cmd Command) sshCmd() ssh.Cmd {
	return ssh.Cmd{Argv: cmd.Argv, Shell: cmd.Shell, Env: cmd.Env, User: cmd.User, Sudo: cmd.Sudo,
		TTY: cmd.TTY, Stdin: cmd.Stdin, Stdout: cmd.Stdout, Stderr: cmd.Stderr}
}

// Validate reports, as an *InvalidError, what makes cmd impossible to run
// on any node: no command (or both Argv and Shell), an environment
// variable name that is not letters, digits and _ (not starting with a
// digit), a NUL byte. Run checks it before anything runs.
func (cmd Command) Validate() error {
	if err := cmd.sshCmd().Check(); err != nil {
		return &InvalidError{Err: err}
	}
	return nil
}

// Run runs a command on the node and returns how it ended. The error is
// an *InvalidError when cmd is invalid (see Validate; nothing ran), an
// *SSHError when the transport failed, including a node that is not
// running (a *NotRunningError inside), or ctx's error; a cancelled command
// is terminated on the node.
func (n Node) Run(ctx context.Context, cmd Command) (ExitStatus, error) {
	if n.cluster == nil {
		return ExitStatus{}, errors.New("node was not returned by a cluster.Client")
	}
	if err := cmd.Validate(); err != nil {
		return ExitStatus{}, err
	}
	if err := n.notRunning(); err != nil {
		return ExitStatus{}, &SSHError{Err: err}
	}
	var st ExitStatus
	if n.cluster.usesExec() {
		x, err := n.cluster.execNode(ctx, n)
		if err != nil {
			return ExitStatus{}, &SSHError{Err: err}
		}
		if st, err = x.run(ctx, cmd.sshCmd()); err != nil {
			if ctx.Err() != nil {
				return ExitStatus{}, ctx.Err()
			}
			return ExitStatus{}, &SSHError{Err: nodeError(n, err)}
		}
		return st, nil
	}
	cl, err := n.cluster.connect(ctx, n)
	if err != nil {
		return ExitStatus{}, &SSHError{Err: err}
	}
	sst, err := cl.Run(ctx, cmd.sshCmd())
	if err != nil {
		if ctx.Err() != nil {
			return ExitStatus{}, ctx.Err()
		}
		return ExitStatus{}, &SSHError{Err: nodeError(n, err)}
	}
	return ExitStatus{Code: sst.Code, Signal: sst.Signal}, nil
}

// Output runs argv on the node and returns its stdout; a non-zero exit is
// an error that carries stderr.
func (n Node) Output(ctx context.Context, argv ...string) ([]byte, error) {
	var stdout bytes.Buffer
	var stderr limitedBuffer
	st, err := n.Run(ctx, Command{Argv: argv, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, err
	}
	if st.Code != 0 {
		return stdout.Bytes(), fmt.Errorf("%s: %q exited %d: %s", n.Ref(), argv, st.Code, stderr.String())
	}
	return stdout.Bytes(), nil
}

// walkLocal is transfer.Walk of a local source; its mistakes are the
// caller's.
func walkLocal(ctx context.Context, src string) (*transfer.Plan, error) {
	p, err := transfer.Walk(ctx, transfer.LocalFS{}, src)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &InvalidError{Err: err}
	}
	return p, nil
}

// Upload copies a local file or directory tree to dst on the node, by
// one contract on every transport (as DC/OS E2E's send_file): dst becomes
// a copy of src, so uploading again changes nothing. A directory is merged
// into an existing directory dst (files replaced, nothing deleted), never
// nested in it; a dst ending in "/" means "into this directory, under
// src's base name". Symbolic links are followed; modes (with setuid,
// setgid, sticky) are kept; missing parents are made; "~/" and relative
// paths are in the login user's home; an interrupted transfer leaves no
// partial file at its place. A missing src, a dangling link or a link
// cycle in it is an *InvalidError found before anything is sent; a clash
// on the node (a file onto a directory, a directory onto a file) is an
// error naming both, with nothing changed.
func (n Node) Upload(ctx context.Context, src, dst string, progress Progress) error {
	if n.cluster == nil {
		return errors.New("node was not returned by a cluster.Client")
	}
	p, err := walkLocal(ctx, src)
	if err != nil {
		return err
	}
	return n.upload(ctx, p, dst, progress)
}

// UploadTo is Upload to several nodes at once: src is walked once, before
// anything is sent, so a mistake in it is one *InvalidError. Otherwise
// the result joins the failed nodes' errors, each naming its node.
// progress, if not nil, gives the Progress of the i-th node.
func (c *Cluster) UploadTo(ctx context.Context, nodes []Node, src, dst string, progress func(i int) Progress) error {
	p, err := walkLocal(ctx, src)
	if err != nil {
		return err
	}
	errs := ssh.FanOut(ctx, len(nodes), 0, func(ctx context.Context, i int) error {
		if nodes[i].cluster == nil {
			return errors.New("node was not returned by a cluster.Client")
		}
		var prog Progress
		if progress != nil {
			prog = progress(i)
		}
		return nodes[i].upload(ctx, p, dst, prog)
	})
	return errors.Join(errs...)
}

func (n Node) upload(ctx context.Context, p *transfer.Plan, dst string, progress Progress) error {
	if err := n.notRunning(); err != nil {
		return &SSHError{Err: err}
	}
	if n.cluster.usesExec() {
		x, err := n.cluster.execNode(ctx, n)
		if err != nil {
			return &SSHError{Err: err}
		}
		return n.transferError(ctx, x.upload(ctx, p, dst, progress))
	}
	cl, err := n.cluster.connect(ctx, n)
	if err != nil {
		return &SSHError{Err: err}
	}
	return n.transferError(ctx, cl.UploadPlan(ctx, p, dst, ssh.Progress(progress)))
}

// Download copies a file or directory tree from the node to the local
// dst, by the contract of Upload (links on the node followed, a dangling
// one or a cycle an error naming it). A local dst of the wrong type is an
// *InvalidError. Local files are written through an os.Root: nothing
// lands outside dst (or, for a file, its directory), not even through a
// link there.
func (n Node) Download(ctx context.Context, src, dst string, progress Progress) error {
	if n.cluster == nil {
		return errors.New("node was not returned by a cluster.Client")
	}
	if err := n.notRunning(); err != nil {
		return &SSHError{Err: err}
	}
	if n.cluster.usesExec() {
		x, err := n.cluster.execNode(ctx, n)
		if err != nil {
			return &SSHError{Err: err}
		}
		return n.transferError(ctx, x.download(ctx, src, dst, progress))
	}
	cl, err := n.cluster.connect(ctx, n)
	if err != nil {
		return &SSHError{Err: err}
	}
	return n.transferError(ctx, cl.Download(ctx, src, dst, ssh.Progress(progress)))
}

// transferError names the node in a transfer's error, the same way on
// every transport; the local input's mistakes become an *InvalidError.
func (n Node) transferError(ctx context.Context, err error) error {
	var input *transfer.InputError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ctx.Err()
	case errors.As(err, &input):
		return &InvalidError{Err: fmt.Errorf("%s: %w", n.Ref(), input.Err)}
	}
	var invalid *InvalidError
	if errors.As(err, &invalid) {
		return err
	}
	return fmt.Errorf("%s: %w", n.Ref(), err)
}

// NodeResult is one node's outcome of RunOn.
type NodeResult struct {
	Node   Node
	Status ExitStatus
	Err    error
}

// RunOptions tune RunOn.
type RunOptions struct {
	// Limit bounds how many nodes run at once; 0 means all.
	Limit int
	// Prefix starts every output line with the node reference ("agent_1: ").
	Prefix bool
}

// RunOn runs a command on several nodes at once and returns every node's
// outcome in node order, after all have finished.
func (c *Cluster) RunOn(ctx context.Context, nodes []Node, cmd Command, opts RunOptions) []NodeResult {
	results := make([]NodeResult, len(nodes))
	var mu sync.Mutex
	ssh.FanOut(ctx, len(nodes), opts.Limit, func(ctx context.Context, i int) error {
		n := nodes[i]
		one := cmd
		var closers []io.Closer
		if opts.Prefix {
			if cmd.Stdout != nil {
				w := ssh.NewPrefixWriter(cmd.Stdout, n.Ref()+": ", &mu)
				one.Stdout, closers = w, append(closers, w)
			}
			if cmd.Stderr != nil {
				w := ssh.NewPrefixWriter(cmd.Stderr, n.Ref()+": ", &mu)
				one.Stderr, closers = w, append(closers, w)
			}
		}
		st, err := n.Run(ctx, one)
		for _, cl := range closers {
			_ = cl.Close()
		}
		results[i] = NodeResult{Node: n, Status: st, Err: err}
		return err
	})
	return results
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
	case errors.As(err, &unknown):
		return &InvalidError{Err: fmt.Errorf("%w (give its key with --known-hosts FILE, or record it with --accept-new-host-keys)", err)}
	case errors.As(err, &auth) || errors.As(err, &changed):
		return &InvalidError{Err: err}
	}
	return err
}

// publicKeyOf returns the authorized_keys line of a key, without the
// trailing newline.
func publicKeyOf(signer gossh.Signer) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
}

// limitedBuffer keeps up to 1 MiB of output.
type limitedBuffer struct {
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := 1<<20 - len(b.buf)
	if room > 0 {
		if len(p) < room {
			room = len(p)
		}
		b.buf = append(b.buf, p[:room]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf }
func (b *limitedBuffer) String() string { return string(b.buf) }

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/e2e-tool/e2e/internal/ssh"
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

// SSHError marks a failure of SSH itself (not of the remote command); the
// CLI exits 255 for it, as ssh does.
type SSHError struct{ Err error }

// Error is the transport's error, naming the node.
func (e *SSHError) Error() string { return e.Err.Error() }

// Unwrap returns the transport's error.
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
		return ExitStatus{}, errors.New("node was not returned by a cluster.Manager")
	}
	if err := cmd.Validate(); err != nil {
		return ExitStatus{}, err
	}
	t, err := n.transport(ctx)
	if err != nil {
		return ExitStatus{}, err
	}
	st, err := t.run(ctx, cmd.sshCmd())
	if err != nil {
		if ctx.Err() != nil {
			return ExitStatus{}, ctx.Err()
		}
		return ExitStatus{}, &SSHError{Err: nodeError(n, err)}
	}
	return st, nil
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
		return stdout.Bytes(), fmt.Errorf("%s: %q exited %d: %s", n.ID(), argv, st.Code, stderr.String())
	}
	return stdout.Bytes(), nil
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
	// Prefix starts every output line with the node's id ("agent_1: ").
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
				w := ssh.NewPrefixWriter(cmd.Stdout, n.ID()+": ", &mu)
				one.Stdout, closers = w, append(closers, w)
			}
			if cmd.Stderr != nil {
				w := ssh.NewPrefixWriter(cmd.Stderr, n.ID()+": ", &mu)
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

package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/sdk"
)

// usesExec reports whether the cluster's nodes are reached through the
// backend's own exec transport (the docker backend's transport=exec)
// instead of SSH.
func (c *Cluster) usesExec() bool { return c.Transport == sdk.TransportExec }

// execPlugin returns the backend's plugin, started once per Cluster for
// the exec transport and stopped by Close.
func (c *Cluster) execPlugin(ctx context.Context) (*plugin.Plugin, error) {
	c.conns.mu.Lock()
	defer c.conns.mu.Unlock()
	if c.conns.plugin != nil {
		return c.conns.plugin, nil
	}
	p, err := c.manager.open(ctx, c.Backend)
	if err != nil {
		return nil, err
	}
	if !p.Desc.Calls.Exec {
		p.Kill()
		return nil, fmt.Errorf("cluster %q asks for the exec transport but the %s backend has none", c.ID, c.Backend)
	}
	c.conns.plugin = p
	c.manager.track(c)
	return p, nil
}

// execNode returns n's exec transport; its errors are the plugin's.
func (c *Cluster) execNode(ctx context.Context, n Node) (execNode, error) {
	p, err := c.execPlugin(ctx)
	if err != nil {
		return execNode{}, err
	}
	m, err := c.manager.load(c.ID)
	if err != nil {
		return execNode{}, err
	}
	return execNode{node: n.Name, user: n.SSH.User, exec: func(ctx context.Context, req sdk.ExecRequest) (int, error) {
		code, err := p.Exec(ctx, clusterRef(m), req)
		if err != nil && ctx.Err() == nil {
			err = p.Wrap("exec", err)
		}
		return code, err
	}}, nil
}

// execNode runs commands on one node through a backend's Exec exactly as
// SSH runs them: the command line internal/ssh builds for sshd (sudo, env
// with E2E_RUN_ID, quoting) is run by /bin/sh -c as the login user, in
// the login user's home. So exit codes and messages are the same on both
// transports (a missing command exits 127 with env's message), and a
// cancelled command is ended the same way (by its E2E_RUN_ID).
type execNode struct {
	node string // the node's name, for the plugin
	user string // the login user
	exec func(ctx context.Context, req sdk.ExecRequest) (int, error)
}

// killTimeout bounds killing a cancelled command: the node may be why.
const killTimeout = 4 * time.Second

// shellArgv runs a remote line as sshd does: with a shell's -c, in the
// login user's home.
func shellArgv(line string) []string {
	return []string{"/bin/sh", "-c", "cd 2>/dev/null; " + line}
}

// run runs cmd and returns how it ended (128+N for signal N, as Docker
// reports it). A command that cannot be built is an *InvalidError; an
// error from the plugin is returned as is; on ctx's end the command's
// processes get SIGTERM and ctx's error is returned.
func (x execNode) run(ctx context.Context, cmd ssh.Cmd) (ExitStatus, error) {
	runID := ssh.NewRunID()
	line, err := cmd.Line(x.user, runID)
	if err != nil {
		return ExitStatus{}, &InvalidError{Err: err}
	}
	if err := ctx.Err(); err != nil {
		return ExitStatus{}, err
	}
	// The line starts with a simple command (env or sudo): exec hands it
	// the shell's process, as a login shell running one command does, so
	// nothing is said when it dies of a signal.
	code, err := x.exec(ctx, sdk.ExecRequest{Node: x.node, Argv: shellArgv("exec " + line), User: x.user, TTY: cmd.TTY,
		Stdin: cmd.Stdin, Stdout: cmd.Stdout, Stderr: cmd.Stderr})
	if ctx.Err() != nil {
		// Closing an exec leaves its command running: end it as SSH does
		// when sshd refuses the signal.
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
		defer cancel()
		_, _ = x.exec(kctx, sdk.ExecRequest{Node: x.node, Argv: shellArgv(ssh.KillLine(runID)), User: x.user})
		return ExitStatus{}, ctx.Err()
	}
	if err != nil {
		return ExitStatus{}, err
	}
	return ExitStatus{Code: code}, nil
}

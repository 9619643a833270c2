package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/e2e-tool/e2e/sdk"
)

// execSpec is a command to run in a container with docker exec.
type execSpec struct {
	argv   []string
	user   string
	env    []string
	tty    bool
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// execIn runs a command in a container and returns its exit code (Docker
// reports 128+N for a command killed by signal N).
func execIn(ctx context.Context, cli *client.Client, ctr string, s execSpec) (int, error) {
	if s.stdout == nil {
		s.stdout = io.Discard
	}
	if s.stderr == nil {
		s.stderr = io.Discard
	}
	created, err := cli.ContainerExecCreate(ctx, ctr, container.ExecOptions{
		User: s.user, Tty: s.tty, Env: s.env, Cmd: s.argv,
		AttachStdin: s.stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, engineError(fmt.Errorf("docker exec in %s: %w", ctr, err))
	}
	hj, err := cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: s.tty})
	if err != nil {
		return -1, engineError(fmt.Errorf("docker exec in %s: %w", ctr, err))
	}
	defer hj.Close()
	if s.stdin != nil {
		go func() {
			_, _ = io.Copy(hj.Conn, s.stdin)
			_ = hj.CloseWrite()
		}()
	}
	done := make(chan error, 1)
	go func() {
		var err error
		if s.tty {
			_, err = io.Copy(s.stdout, hj.Reader)
		} else {
			_, err = stdcopy.StdCopy(s.stdout, s.stderr, hj.Reader)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return -1, fmt.Errorf("docker exec in %s: reading output: %w", ctr, err)
		}
	case <-ctx.Done():
		hj.Close()
		return -1, ctx.Err()
	}
	// The exit code is set a moment after the output ends.
	return backoff.Retry(ctx, func() (int, error) {
		in, err := cli.ContainerExecInspect(ctx, created.ID)
		switch {
		case err != nil:
			return -1, backoff.Permanent(engineError(fmt.Errorf("docker exec in %s: %w", ctr, err)))
		case in.Running:
			return -1, errExecRunning
		}
		return in.ExitCode, nil
	}, backoff.WithBackOff(backoff.NewConstantBackOff(10*time.Millisecond)), backoff.WithMaxElapsedTime(0))
}

// errExecRunning is "no exit code yet", retried until ctx ends.
var errExecRunning = errors.New("the command is still running")

// findNode resolves a node reference: master_0, a container name or
// hostname, or a private address.
func findNode(c *sdk.Cluster, ref string) (sdk.Node, error) {
	var refs []string
	for _, n := range c.Nodes {
		r := string(n.Role) + "_" + strconv.Itoa(n.Index)
		if ref == r || ref == n.Name || ref == n.Hostname || (n.PrivateAddress != "" && ref == n.PrivateAddress) {
			return n, nil
		}
		refs = append(refs, r)
	}
	return sdk.Node{}, fmt.Errorf("cluster %q has no node %q (nodes: %s)", c.ID, ref, strings.Join(refs, ", "))
}

// Exec runs a command on a node with docker exec: the exec transport.
func (backend) Exec(ctx context.Context, ref sdk.ClusterRef, req sdk.ExecRequest) (int, error) {
	if len(req.Argv) == 0 {
		return -1, fmt.Errorf("no command to run")
	}
	cli, err := newClient()
	if err != nil {
		return -1, err
	}
	defer cli.Close()
	c, err := getCluster(ctx, cli, ref)
	if err != nil {
		return -1, err
	}
	n, err := findNode(c, req.Node)
	if err != nil {
		return -1, err
	}
	env := make([]string, 0, len(req.Env))
	for k, v := range req.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return execIn(ctx, cli, n.Name, execSpec{
		argv: req.Argv, user: req.User, env: env, tty: req.TTY,
		stdin: req.Stdin, stdout: req.Stdout, stderr: req.Stderr,
	})
}

package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
)

// stopTimeout is how long a node's systemd gets to halt (the image's stop
// signal, SIGRTMIN+3, asks it to) before the engine kills the container.
const stopTimeout = 30 // seconds

// nodeContainers returns a Docker client, which the caller closes, and the
// node containers of the cluster ref names: those labelled with its id and
// uid (without a uid, the newest creation, as Get chooses).
// sdk.ErrNotFound when there are none.
func nodeContainers(ctx context.Context, ref sdk.ClusterRef) (*client.Client, []container.Summary, error) {
	cli, err := newClient()
	if err != nil {
		return nil, nil, err
	}
	c, err := getCluster(ctx, cli, ref)
	if err == nil {
		var cs []container.Summary
		if cs, err = nodesMatching(ctx, cli, clusterFilter(c.ID, c.UID)); err == nil {
			return cli, cs, nil
		}
	}
	cli.Close()
	return nil, nil, err
}

// Stop stops every node container of the cluster (docker stop: systemd
// halts, then the container exits), keeping containers, volumes, host keys
// and the network. Containers that do not run are left as they are.
func (backend) Stop(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	cli, cs, err := nodeContainers(ctx, ref)
	if err != nil {
		return err
	}
	defer cli.Close()
	var done atomic.Int64
	timeout := stopTimeout
	return parallel(ctx, len(cs), func(ctx context.Context, i int) error {
		c := cs[i]
		name := strings.TrimPrefix(firstName(c), "/")
		switch c.State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			if err := cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
				return engineError(fmt.Errorf("stopping %s: %w", name, err))
			}
		}
		r.Progress("stop nodes", name, done.Add(1), int64(len(cs)))
		return nil
	})
}

// Start starts every node container of the cluster that does not run
// (unpausing a paused one) and waits until systemd has booted on each, as
// Create does. Each node keeps its host key; sshd gets a new published
// port, which Get reports.
func (backend) Start(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	cli, cs, err := nodeContainers(ctx, ref)
	if err != nil {
		return err
	}
	defer cli.Close()
	total := int64(len(cs))
	var started, booted atomic.Int64
	return parallel(ctx, len(cs), func(ctx context.Context, i int) error {
		c := cs[i]
		name := strings.TrimPrefix(firstName(c), "/")
		switch c.State {
		case container.StateRunning:
		case container.StatePaused:
			if err := cli.ContainerUnpause(ctx, c.ID); err != nil {
				return engineError(fmt.Errorf("unpausing %s: %w", name, err))
			}
		default:
			if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
				return engineError(fmt.Errorf("starting %s: %w", name, err))
			}
		}
		r.Progress("start nodes", name, started.Add(1), total)
		if err := waitBooted(ctx, cli, c.ID, name, r); err != nil {
			return err
		}
		r.Progress("boot nodes", name, booted.Add(1), total)
		return nil
	})
}

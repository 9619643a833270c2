package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/e2e-tool/e2e/sdk"
)

// NodeLogs writes the engine's view of a node's container, as `kind export
// logs` does: inspect.json (docker inspect) and console.log (docker logs
// --timestamps: systemd's console, stdout and stderr interleaved), for a
// container in any state.
func (backend) NodeLogs(ctx context.Context, ref sdk.ClusterRef, node string, files sdk.LogFiles) error {
	cli, err := newClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	c, err := getCluster(ctx, cli, ref)
	if err != nil {
		return err
	}
	n, err := findNode(c, node)
	if err != nil {
		return fmt.Errorf("%w: %w", sdk.ErrNotFound, err)
	}
	info, raw, err := cli.ContainerInspectWithRaw(ctx, n.Name, false)
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: container %s of node %s is gone", sdk.ErrNotFound, n.Name, node)
	}
	if err != nil {
		return engineError(fmt.Errorf("docker inspect %s: %w", n.Name, err))
	}
	w, err := files.File("inspect.json")
	if err != nil {
		return err
	}
	// As `docker inspect` prints it: a list of one.
	raw = append(append([]byte("["), raw...), ']')
	var indented bytes.Buffer
	if json.Indent(&indented, raw, "", "    ") == nil {
		raw = append(indented.Bytes(), '\n')
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	logs, err := cli.ContainerLogs(ctx, n.Name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		return engineError(fmt.Errorf("docker logs %s: %w", n.Name, err))
	}
	defer logs.Close()
	if w, err = files.File("console.log"); err != nil {
		return err
	}
	if info.Config != nil && info.Config.Tty {
		_, err = io.Copy(w, logs)
	} else {
		_, err = stdcopy.StdCopy(w, w, logs)
	}
	if err != nil {
		return fmt.Errorf("docker logs %s: %w", n.Name, err)
	}
	return nil
}

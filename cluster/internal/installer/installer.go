// Package installer is what the installer packages (cluster/dcos,
// cluster/script) share: a cluster's nodes as internal/install works on
// them, and its progress events. It uses only the cluster package's
// public API, as any installer could.
package installer

import (
	"context"
	"io"
	"net"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/install"
)

// target is a cluster.Node as an install.Target: commands run as root
// (sudo), files copied by the node's transport, connections through SSH.
type target struct{ n cluster.Node }

func (t target) ID() string         { return t.n.ID() }
func (t target) Role() cluster.Role { return t.n.Role }
func (t target) Address() string    { return t.n.PrivateAddress }
func (t target) Exec(ctx context.Context, shell string, env map[string]string, stdout, stderr io.Writer) (int, error) {
	st, err := t.n.Run(ctx, cluster.Command{Shell: shell, Env: env, Sudo: true, Stdout: stdout, Stderr: stderr})
	return st.Code, err
}
func (t target) Upload(ctx context.Context, src, dst string) error {
	return t.n.Upload(ctx, src, dst, nil)
}
func (t target) Download(ctx context.Context, src, dst string) error {
	return t.n.Download(ctx, src, dst, nil)
}
func (t target) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return t.n.DialContext(ctx, network, addr)
}

// Targets returns nodes as install.Targets, in the same order.
func Targets(nodes []cluster.Node) []install.Target {
	out := make([]install.Target, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, target{n})
	}
	return out
}

// Events reports an installer's steps as the cluster's progress events
// (Cluster.Report), the node, if any, after the step.
func Events(c *cluster.Cluster) install.Events {
	return func(step, node, msg string) {
		if node != "" {
			step = step + " " + node
		}
		c.Report(cluster.Event{Step: step, Node: node, Message: msg})
	}
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
)

// NotRunningError is the error of a command on a node that is not running
// (stopped or missing, as the backend said when the Cluster was returned):
// nothing was tried on the node. Node.Run, Upload and Download return it
// inside an *SSHError, as the CLI exits 255 when a command could not be run
// on a node.
type NotRunningError struct {
	Cluster string
	Backend string
	// Node is the node's id, such as agent_0.
	Node  string
	State NodeState
	// canStart says the backend can start the cluster (e2e start).
	canStart bool
}

// Error says which node is not running and what to do about it.
func (e *NotRunningError) Error() string {
	if e.State == NodeMissing {
		return fmt.Sprintf("%s of cluster %q is missing (the %s backend no longer has its machine): "+
			"destroy the cluster with `e2e destroy -c %s` and create it again", e.Node, e.Cluster, e.Backend, e.Cluster)
	}
	if e.canStart {
		return fmt.Sprintf("%s of cluster %q is %s: start it with `e2e start -c %s`", e.Node, e.Cluster, e.State, e.Cluster)
	}
	return fmt.Sprintf("%s of cluster %q is %s: the %s backend cannot start it; start its machine with the backend's own tools",
		e.Node, e.Cluster, e.State, e.Backend)
}

// notRunning returns a *NotRunningError when the node does not run.
func (n Node) notRunning() error {
	if n.Running() {
		return nil
	}
	e := &NotRunningError{Node: n.ID(), State: n.State}
	if n.cluster != nil {
		e.Cluster, e.Backend, e.canStart = n.cluster.ID, n.cluster.Backend, n.cluster.startStop
	}
	return e
}

// RequireRunning fails before work that needs all of nodes (installation,
// waiting) when one does not run: the first one's *NotRunningError,
// naming the others that do not run either; nil when all run.
func RequireRunning(nodes []Node) error {
	var first error
	var others []string
	for _, n := range nodes {
		err := n.notRunning()
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			others = append(others, n.ID()+" ("+string(n.State)+")")
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("%w (not running either: %s)", first, strings.Join(others, ", "))
	}
	return first
}

// openStartStop loads a cluster's record and starts its backend's plugin,
// refusing backends that cannot start and stop clusters.
func (m *Manager) openStartStop(ctx context.Context, id, verb string) (state.Metadata, *plugin.Plugin, error) {
	meta, err := m.load(id)
	if err != nil {
		return meta, nil, err
	}
	p, err := m.open(ctx, meta.Backend)
	if err != nil {
		return meta, nil, err
	}
	if !p.Desc.Calls.StartStop {
		p.Kill()
		return meta, nil, invalidf("the %s backend cannot %s clusters (cluster %q); see `e2e plugin info %s`", meta.Backend, verb, id, meta.Backend)
	}
	return meta, p, nil
}

// notFoundError says what to do about a recorded cluster its backend no
// longer has.
func notFoundError(id, backend string) error {
	return fmt.Errorf("cluster %q is recorded but the %s backend no longer has it: `e2e destroy -c %s` drops the record", id, backend, id)
}

// Stop stops every node of a cluster, keeping its machines (disks, host
// keys, addresses on the cluster network), so that Start brings it back, as
// footloose's and k3d's stop do. Stopping a stopped cluster succeeds. A
// backend that cannot (BackendInfo.Capabilities.StartStop false) is an
// *InvalidError naming it.
func (m *Manager) Stop(ctx context.Context, id string) error {
	meta, p, err := m.openStartStop(ctx, id, "stop")
	if err != nil {
		return err
	}
	defer p.Kill()
	err = p.Stop(ctx, clusterRef(meta), m.emit(id))
	if errors.Is(err, sdk.ErrNotFound) {
		return notFoundError(id, meta.Backend)
	}
	if err != nil {
		return fmt.Errorf("stopping cluster %q: %w", id, p.Wrap("stop", err))
	}
	return nil
}

// Start starts the nodes of a cluster that are not running and returns once
// every node answers: when the backend's nodes have sshd (NodesRunSSHD), it
// logs in to each with the cluster's key, retrying while sshd starts (up to
// 3 minutes), and checks its host key against the pinned one, as Create
// does. Starting a running cluster succeeds. A backend that cannot is an
// *InvalidError naming it.
//
// The host keys the backend vouches for are pinned under each node's alias
// when no key is pinned there yet: clusters recorded by an e2e that pinned
// them under the SSH address keep working after their ports change. A key
// that differs from a pinned one is never added, so it stays refused.
func (m *Manager) Start(ctx context.Context, id string) error {
	meta, p, err := m.openStartStop(ctx, id, "start")
	if err != nil {
		return err
	}
	defer p.Kill()
	err = p.Start(ctx, clusterRef(meta), m.emit(id))
	if errors.Is(err, sdk.ErrNotFound) {
		return notFoundError(id, meta.Backend)
	}
	if err != nil {
		return fmt.Errorf("starting cluster %q: %w", id, p.Wrap("start", err))
	}
	sc, err := p.Get(ctx, clusterRef(meta))
	if errors.Is(err, sdk.ErrNotFound) {
		return notFoundError(id, meta.Backend)
	}
	if err != nil {
		return fmt.Errorf("getting cluster %q from the %s backend after starting it: %w", id, meta.Backend, p.Wrap("get", err))
	}
	if meta, err = m.pinAliases(ctx, meta, sc); err != nil {
		return fmt.Errorf("starting cluster %q: %w", id, err)
	}
	c := m.toCluster(meta, sc, p.Desc)
	if err := RequireRunning(c.Nodes); err != nil {
		return fmt.Errorf("starting cluster %q: the %s backend did not start every node: %w", id, meta.Backend, err)
	}
	if !p.Desc.NodesRunSSHD {
		return nil
	}
	m.events(Event{Cluster: id, Step: "check SSH on every node"})
	if err := c.verifySSH(ctx, false, DefaultSSHTimeout); err != nil {
		return fmt.Errorf("checking SSH on the nodes of cluster %q after starting it: %w", id, err)
	}
	return nil
}

// pinAliases pins the host keys the backend vouches for under each node's
// alias where none is pinned yet, and records the alias of every such node.
func (m *Manager) pinAliases(ctx context.Context, meta state.Metadata, sc *sdk.Cluster) (state.Metadata, error) {
	keys := vouchedKeys(meta.ID, sc.Nodes)
	if len(keys) == 0 {
		return meta, nil
	}
	aliases := map[string]string{}
	for _, n := range sc.Nodes {
		if len(n.HostKeys) > 0 {
			aliases[nodeID(n.Role, n.Index)] = hostKeyAlias(meta.ID, n)
		}
	}
	var updated state.Metadata
	err := m.store.Update(ctx, meta.ID, func(rec *state.Metadata) error {
		pinned, err := m.store.PinNewHostKeys(meta.ID, keys)
		if err != nil {
			return err
		}
		if len(pinned) > 0 {
			m.logger.Info("pinned host keys the backend vouches for", "cluster", meta.ID, "names", strings.Join(pinned, ", "))
		}
		for i, n := range rec.Nodes {
			if a := aliases[nodeID(n.Role, n.Index)]; a != "" {
				rec.Nodes[i].HostKeyAlias = a
			}
		}
		updated = *rec
		return nil
	})
	if err != nil {
		return meta, fmt.Errorf("pinning host keys: %w", err)
	}
	return updated, nil
}

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

// hostKeyAlias is the name a node's host keys are pinned under in the
// cluster's known_hosts: e2e-<cluster id>-<node>, such as
// e2e-mine-master_0. It is the node's identity in e2e (every command names
// nodes so), stable while the machine's address and port change, always a
// valid known_hosts host name whatever the backend calls the machine, and
// e2e-prefixed so that it matches no real host in a user's known_hosts.
func hostKeyAlias(clusterID string, n sdk.Node) string {
	return "e2e-" + clusterID + "-" + nodeRef(Role(n.Role), n.Index)
}

// vouchedKeys are the host keys a backend reported, pinned under each
// node's alias.
func vouchedKeys(clusterID string, nodes []sdk.Node) []state.HostKey {
	var keys []state.HostKey
	for _, n := range nodes {
		for _, k := range n.HostKeys {
			keys = append(keys, state.HostKey{Alias: hostKeyAlias(clusterID, n), Key: k})
		}
	}
	return keys
}

// nodeStateOf reads a backend's node state; a backend that reports none
// (one built before node states existed) means running.
func nodeStateOf(s sdk.NodeState) NodeState {
	switch s {
	case sdk.NodeStopped:
		return NodeStopped
	case sdk.NodeMissing:
		return NodeMissing
	}
	return NodeRunning
}

func nodeStates(nodes []Node) map[string]NodeState {
	out := make(map[string]NodeState, len(nodes))
	for _, n := range nodes {
		out[n.Ref()] = n.State
	}
	return out
}

// clusterStatus sums up node states: "running", "stopped" when every node
// is stopped, else "degraded (N of M nodes not running)".
func clusterStatus(nodes []Node) string {
	down, stopped := 0, 0
	for _, n := range nodes {
		if !n.Running() {
			down++
		}
		if n.State == NodeStopped {
			stopped++
		}
	}
	switch {
	case down == 0:
		return "running"
	case stopped == len(nodes):
		return "stopped"
	}
	return fmt.Sprintf("degraded (%d of %d %s not running)", down, len(nodes), plural(len(nodes), "node"))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// NotRunningError is the error of a command on a node that is not running
// (stopped or missing, as the backend said when the Cluster was returned):
// nothing was tried on the node. Node.Run, Upload and Download return it
// inside an *SSHError, as the CLI exits 255 when a command could not be run
// on a node.
type NotRunningError struct {
	Cluster string
	Backend string
	// Node is the node's reference, such as agent_0.
	Node  string
	State NodeState
	// canStart says the backend can start the cluster (e2e start).
	canStart bool
}

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
	e := &NotRunningError{Node: n.Ref(), State: n.State}
	if n.cluster != nil {
		e.Cluster, e.Backend, e.canStart = n.cluster.ID, n.cluster.Backend, n.cluster.startStop
	}
	return e
}

// requireRunning fails before work that needs all of nodes (installation,
// waiting) when one does not run: the first one's error, naming the others.
func requireRunning(nodes []Node) error {
	var first error
	var others []string
	for _, n := range nodes {
		err := n.notRunning()
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			others = append(others, n.Ref()+" ("+string(n.State)+")")
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("%w (not running either: %s)", first, strings.Join(others, ", "))
	}
	return first
}

// openStartStop loads a cluster's record and starts its backend's plugin,
// refusing backends that cannot start and stop clusters.
func (e *Client) openStartStop(ctx context.Context, id, verb string) (state.Metadata, *plugin.Plugin, error) {
	meta, err := e.load(id)
	if err != nil {
		return meta, nil, err
	}
	p, err := e.open(ctx, meta.Backend)
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
func (e *Client) Stop(ctx context.Context, id string) error {
	meta, p, err := e.openStartStop(ctx, id, "stop")
	if err != nil {
		return err
	}
	defer p.Kill()
	err = p.Stop(ctx, ref(meta), e.emit(id))
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
func (e *Client) Start(ctx context.Context, id string) error {
	meta, p, err := e.openStartStop(ctx, id, "start")
	if err != nil {
		return err
	}
	defer p.Kill()
	err = p.Start(ctx, ref(meta), e.emit(id))
	if errors.Is(err, sdk.ErrNotFound) {
		return notFoundError(id, meta.Backend)
	}
	if err != nil {
		return fmt.Errorf("starting cluster %q: %w", id, p.Wrap("start", err))
	}
	sc, err := p.Get(ctx, ref(meta))
	if errors.Is(err, sdk.ErrNotFound) {
		return notFoundError(id, meta.Backend)
	}
	if err != nil {
		return fmt.Errorf("getting cluster %q from the %s backend after starting it: %w", id, meta.Backend, p.Wrap("get", err))
	}
	if meta, err = e.pinAliases(ctx, meta, sc); err != nil {
		return fmt.Errorf("starting cluster %q: %w", id, err)
	}
	c := e.toCluster(meta, sc, p.Desc)
	if err := requireRunning(c.Nodes); err != nil {
		return fmt.Errorf("starting cluster %q: the %s backend did not start every node: %w", id, meta.Backend, err)
	}
	if !p.Desc.NodesRunSSHD {
		return nil
	}
	e.events(Event{Cluster: id, Step: "check SSH on every node"})
	if err := c.verifySSH(ctx, false, DefaultSSHTimeout); err != nil {
		return fmt.Errorf("checking SSH on the nodes of cluster %q after starting it: %w", id, err)
	}
	return nil
}

// pinAliases pins the host keys the backend vouches for under each node's
// alias where none is pinned yet, and records the alias of every such node.
func (e *Client) pinAliases(ctx context.Context, meta state.Metadata, sc *sdk.Cluster) (state.Metadata, error) {
	keys := vouchedKeys(meta.ID, sc.Nodes)
	if len(keys) == 0 {
		return meta, nil
	}
	aliases := map[string]string{}
	for _, n := range sc.Nodes {
		if len(n.HostKeys) > 0 {
			aliases[nodeRef(Role(n.Role), n.Index)] = hostKeyAlias(meta.ID, n)
		}
	}
	var updated state.Metadata
	err := e.store.Update(ctx, meta.ID, func(m *state.Metadata) error {
		pinned, err := e.store.PinNewHostKeys(meta.ID, keys)
		if err != nil {
			return err
		}
		if len(pinned) > 0 {
			e.logger.Info("pinned host keys the backend vouches for", "cluster", meta.ID, "names", strings.Join(pinned, ", "))
		}
		for i, n := range m.Nodes {
			if a := aliases[nodeRef(Role(n.Role), n.Index)]; a != "" {
				m.Nodes[i].HostKeyAlias = a
			}
		}
		updated = *m
		return nil
	})
	if err != nil {
		return meta, fmt.Errorf("pinning host keys: %w", err)
	}
	return updated, nil
}

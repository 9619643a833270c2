package cluster

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
)

// countRoles counts a backend's nodes by role.
func countRoles(nodes []sdk.Node) state.Counts {
	var n state.Counts
	for _, node := range nodes {
		switch node.Role {
		case RoleMaster:
			n.Masters++
		case RoleAgent:
			n.Agents++
		case RolePublicAgent:
			n.PublicAgents++
		}
	}
	return n
}

// nodeRecords are the records of a backend's nodes, logged in to as
// sshUser when given.
func nodeRecords(nodes []sdk.Node, sshUser string) []state.NodeRecord {
	out := make([]state.NodeRecord, 0, len(nodes))
	for _, n := range nodes {
		user := n.SSH.User
		if sshUser != "" {
			user = sshUser
		}
		out = append(out, state.NodeRecord{Role: n.Role, Index: n.Index, Name: n.Name, Hostname: n.Hostname,
			PrivateAddress: n.PrivateAddress, PublicAddress: n.PublicAddress,
			SSHHost: n.SSH.Host, SSHPort: n.SSH.Port, SSHUser: user})
	}
	return out
}

// toCluster makes the Cluster the caller sees from the record and what the
// backend reports now: nodes with their current state and endpoint, the
// alias their host keys are pinned under, and every recorded node the
// backend no longer reports as missing.
func (m *Manager) toCluster(meta state.Metadata, sc *sdk.Cluster, desc host.Description) *Cluster {
	c := &Cluster{ID: meta.ID, UID: meta.UID, Backend: meta.Backend, PluginVersion: desc.Version,
		CreatedAt: meta.CreatedAt, StateDir: m.store.ClusterDir(meta.ID), SSHKeyPath: meta.SSHKeyPath, manager: m,
		Installed: meta.Installed, startStop: desc.Calls.StartStop, SSHProxyCommand: meta.SSHProxyCommand,
		access: accessOf(m, meta), conns: &conns{}}
	recorded := map[string]state.NodeRecord{}
	for _, n := range meta.Nodes {
		recorded[nodeID(n.Role, n.Index)] = n
	}
	seen := map[string]bool{}
	if sc != nil {
		c.Details, c.Transport, c.ExpiresAt = sc.Details, sc.Transport, sc.ExpiresAt
		for i, n := range nodeRecords(sc.Nodes, meta.SSHUser) {
			node := nodeFromRecord(n, nodeStateOf(sc.Nodes[i].State))
			node.HostKeyAlias = recorded[node.ID()].HostKeyAlias
			seen[node.ID()] = true
			c.Nodes = append(c.Nodes, node)
		}
	}
	for _, n := range meta.Nodes {
		if node := nodeFromRecord(n, NodeMissing); !seen[node.ID()] {
			// Recorded, but the backend no longer reports it: the core
			// must not dial whatever now has its old address.
			node.SSH.Port = 0
			c.Nodes = append(c.Nodes, node)
		}
	}
	sortNodes(c.Nodes)
	for i := range c.Nodes {
		c.Nodes[i].cluster = c
	}
	c.Status = clusterStatus(c.Nodes)
	return c
}

// nodeFromRecord is the Node of a record, in state st.
func nodeFromRecord(n state.NodeRecord, st NodeState) Node {
	return Node{Role: n.Role, Index: n.Index, Name: n.Name, Hostname: n.Hostname,
		PrivateAddress: n.PrivateAddress, PublicAddress: n.PublicAddress,
		SSH: SSHEndpoint{Host: n.SSHHost, Port: n.SSHPort, User: n.SSHUser}, State: st, HostKeyAlias: n.HostKeyAlias}
}

// sortNodes puts nodes in node order: by role in the SDK's order (Roles),
// then by index.
func sortNodes(nodes []Node) {
	slices.SortStableFunc(nodes, func(a, b Node) int {
		return cmp.Or(sdk.CompareRoles(a.Role, b.Role), cmp.Compare(a.Index, b.Index))
	})
}

// clusterRef is what the backend finds a recorded cluster by.
func clusterRef(meta state.Metadata) host.ClusterRef {
	return host.ClusterRef{ClusterID: meta.ID, UID: meta.UID, OptionsJSON: meta.Options, Record: meta.Record}
}

// hostKeyAlias is the name a node's host keys are pinned under in the
// cluster's known_hosts: e2e-<cluster id>-<node>, such as
// e2e-mine-master_0. It is the node's identity in e2e (every command names
// nodes so), stable while the machine's address and port change, always a
// valid known_hosts host name whatever the backend calls the machine, and
// e2e-prefixed so that it matches no real host in a user's known_hosts.
func hostKeyAlias(clusterID string, n sdk.Node) string {
	return "e2e-" + clusterID + "-" + nodeID(n.Role, n.Index)
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
		out[n.ID()] = n.State
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

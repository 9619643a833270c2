package cluster

import (
	"slices"
	"testing"
)

func TestClusterStatus(t *testing.T) {
	nodes := func(states ...NodeState) []Node {
		out := make([]Node, len(states))
		for i, s := range states {
			out[i] = Node{Role: RoleAgent, Index: i, State: s}
		}
		return out
	}
	for _, tt := range []struct {
		nodes []Node
		want  string
	}{
		{nodes(NodeRunning, NodeRunning), "running"},
		{nodes(NodeStopped, NodeStopped), "stopped"},
		{nodes(NodeRunning, NodeStopped, NodeRunning), "degraded (1 of 3 nodes not running)"},
		{nodes(NodeRunning, NodeMissing), "degraded (1 of 2 nodes not running)"},
		// Nothing runs, but not everything can be started again.
		{nodes(NodeStopped, NodeMissing), "degraded (2 of 2 nodes not running)"},
		{nodes(NodeStopped), "stopped"},
	} {
		if got := clusterStatus(tt.nodes); got != tt.want {
			t.Errorf("clusterStatus(%v) = %q, want %q", nodeStates(tt.nodes), got, tt.want)
		}
	}
}

// TestSortNodes: inspect, RunOn and every listing show nodes by role in
// the SDK's order, then by index (agent_2 before agent_10).
func TestSortNodes(t *testing.T) {
	n := func(r Role, i int) Node { return Node{Role: r, Index: i} }
	for _, tt := range []struct {
		name string
		in   []Node
		want []string
	}{
		{"roles", []Node{n(RolePublicAgent, 0), n(RoleAgent, 0), n(RoleMaster, 0)}, []string{"master_0", "agent_0", "public_agent_0"}},
		{"indices", []Node{n(RoleAgent, 10), n(RoleAgent, 2), n(RoleMaster, 1), n(RoleMaster, 0)}, []string{"master_0", "master_1", "agent_2", "agent_10"}},
		{"sorted", []Node{n(RoleMaster, 0), n(RoleAgent, 0)}, []string{"master_0", "agent_0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sortNodes(tt.in)
			got := make([]string, len(tt.in))
			for i, node := range tt.in {
				got[i] = node.ID()
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("order %v, want %v", got, tt.want)
			}
		})
	}
}

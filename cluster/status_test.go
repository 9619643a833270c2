package cluster

import "testing"

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

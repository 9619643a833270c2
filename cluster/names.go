package cluster

import (
	"slices"
)

// RecordedNodes returns the ids (master_0, agent_1, ...) of the nodes of a
// recorded cluster, in node order, from its record alone: no plugin is
// started and no node is asked, so it suits shell completion. The error is
// an *InvalidError for an id with no record.
func (m *Manager) RecordedNodes(id string) ([]string, error) {
	meta, err := m.load(id)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(meta.Nodes))
	for _, n := range meta.Nodes {
		out = append(out, nodeID(n.Role, n.Index))
	}
	return out, nil
}

// BackendNames returns the names of the backends whose plugins discovery
// finds, sorted, without starting any.
func (m *Manager) BackendNames() ([]string, error) {
	cands, err := m.usedPlugins("")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cands {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

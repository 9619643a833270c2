package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
)

// Get returns a cluster as its backend sees it now.
func (m *Manager) Get(ctx context.Context, id string) (*Cluster, error) {
	meta, err := m.load(id)
	if err != nil {
		return nil, err
	}
	p, err := m.open(ctx, meta.Backend)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	sc, err := p.Get(ctx, clusterRef(meta))
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, fmt.Errorf("cluster %q is recorded but the %s backend no longer has it: `e2e destroy -c %s` drops the record", id, meta.Backend, id)
	}
	if err != nil {
		return nil, fmt.Errorf("getting cluster %q from the %s backend: %w", id, meta.Backend, p.Wrap("get", err))
	}
	return m.toCluster(meta, sc, p.Desc), nil
}

// Summary is one line of List.
type Summary struct {
	ID           string    `json:"id"`
	Backend      string    `json:"backend"`
	Masters      int       `json:"masters"`
	Agents       int       `json:"agents"`
	PublicAgents int       `json:"public_agents"`
	CreatedAt    time.Time `json:"created_at"`
	// Status is "running"; "stopped" (every node stopped: `e2e start`
	// brings it back); "degraded (N of M nodes not running)"; "missing"
	// (recorded, but the backend no longer has it); "untracked" (the
	// backend has it, this e2e has no record); or "error: ...".
	Status string `json:"status"`
	// Nodes maps each node (master_0, ...) to its state, when the backend
	// was asked.
	Nodes map[string]NodeState `json:"nodes,omitempty"`
	// ExpiresAt is when the cluster's lifespan ends, as its backend
	// reports it (zero: no lifespan, or the backend was not asked).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Home is, for an untracked cluster, the E2E_HOME (state directory)
	// whose e2e made it, when the backend knows it (sdk.HomeDetail): on
	// a shared engine, whose cluster it is.
	Home string `json:"e2e_home,omitempty"`
}

// ListOptions filter List.
type ListOptions struct {
	// Backend limits the list to one backend.
	Backend string
}

// List returns the recorded clusters with their status according to their
// backends, and clusters the backends know of that have no record here.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]Summary, error) {
	metas, err := m.store.List()
	if err != nil {
		return nil, err
	}
	byBackend := map[string][]state.Metadata{}
	for _, meta := range metas {
		if opts.Backend == "" || meta.Backend == opts.Backend {
			byBackend[meta.Backend] = append(byBackend[meta.Backend], meta)
		}
	}
	if opts.Backend != "" {
		if _, err := plugin.Find(m.host.Dirs(), opts.Backend); err != nil {
			return nil, &InvalidError{Err: err}
		}
		if _, ok := byBackend[opts.Backend]; !ok {
			byBackend[opts.Backend] = nil
		}
	}
	var (
		mu  sync.Mutex
		out []Summary
		wg  sync.WaitGroup
	)
	for backend, ms := range byBackend {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows := m.listBackend(ctx, backend, ms)
			mu.Lock()
			out = append(out, rows...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Backend < out[j].Backend
	})
	return out, nil
}

func (m *Manager) listBackend(ctx context.Context, backend string, metas []state.Metadata) []Summary {
	var rows []Summary
	p, err := m.open(ctx, backend)
	if err != nil {
		for _, meta := range metas {
			rows = append(rows, summary(meta, "error: "+err.Error()))
		}
		return rows
	}
	defer p.Kill()
	seen := map[string]bool{}
	for _, meta := range metas {
		seen[meta.ID] = true
		sc, err := p.Get(ctx, clusterRef(meta))
		switch {
		case errors.Is(err, sdk.ErrNotFound):
			rows = append(rows, summary(meta, "missing"))
		case err != nil:
			rows = append(rows, summary(meta, "error: "+p.Wrap("get", err).Error()))
		default:
			c := m.toCluster(meta, sc, p.Desc)
			row := summary(meta, c.Status)
			row.Nodes, row.ExpiresAt = nodeStates(c.Nodes), sc.ExpiresAt
			rows = append(rows, row)
		}
	}
	if !p.Desc.Calls.List {
		return rows
	}
	// Ask the backend with each distinct set of stored options (or none),
	// to find clusters made from another state directory.
	optionSets := map[string][]byte{}
	for _, meta := range metas {
		optionSets[string(meta.Options)] = meta.Options
	}
	if len(optionSets) == 0 {
		optionSets[""] = nil
	}
	for _, raw := range optionSets {
		found, err := p.List(ctx, raw)
		if err != nil {
			m.logger.Debug("listing clusters", "backend", backend, "error", err)
			continue
		}
		for _, c := range found {
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			n := countRoles(c.Nodes)
			states := map[string]NodeState{}
			for _, node := range c.Nodes {
				states[nodeID(node.Role, node.Index)] = nodeStateOf(node.State)
			}
			rows = append(rows, Summary{ID: c.ID, Backend: backend, CreatedAt: c.CreatedAt, Status: "untracked",
				Masters: n.Masters, Agents: n.Agents, PublicAgents: n.PublicAgents, Nodes: states, ExpiresAt: c.ExpiresAt,
				Home: c.Details[sdk.HomeDetail]})
		}
	}
	return rows
}

func summary(m state.Metadata, status string) Summary {
	return Summary{ID: m.ID, Backend: m.Backend, Masters: m.Counts.Masters, Agents: m.Counts.Agents,
		PublicAgents: m.Counts.PublicAgents, CreatedAt: m.CreatedAt, Status: status}
}

// IDs returns the ids of every recorded cluster.
func (m *Manager) IDs() ([]string, error) {
	metas, err := m.store.List()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(metas))
	for _, meta := range metas {
		ids = append(ids, meta.ID)
	}
	return ids, nil
}

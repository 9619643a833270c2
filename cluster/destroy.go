package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
)

// Destroy removes a cluster's machines and its record, after closing the
// connections of the manager's clusters of that id. Destroying a cluster
// the backend no longer has only drops the record.
func (m *Manager) Destroy(ctx context.Context, id string) error {
	m.closeClusters(id)
	meta, err := m.load(id)
	if errors.Is(err, ErrUnknownCluster) {
		return m.destroyUntracked(ctx, id, err)
	}
	if err != nil {
		return err
	}
	p, err := m.open(ctx, meta.Backend)
	if err != nil {
		return err
	}
	defer p.Kill()
	if !p.Desc.Calls.Destroy {
		return invalidf("the %s backend cannot destroy cluster %q: e2e did not create these machines; `e2e forget -c %s` drops the record", meta.Backend, id, id)
	}
	if err := p.Destroy(ctx, clusterRef(meta), m.emit(id)); err != nil {
		return fmt.Errorf("destroying cluster %q: %w", id, p.Wrap("destroy", err))
	}
	return m.store.Remove(ctx, id)
}

// destroyUntracked destroys a cluster this e2e has no record of (made from
// another E2E_HOME) when exactly one backend that tracks its clusters has it
// with its default options; otherwise notFound is returned.
func (m *Manager) destroyUntracked(ctx context.Context, id string, notFound error) error {
	cands, err := m.host.Discover()
	if err != nil {
		return notFound
	}
	type hit struct {
		p *plugin.Plugin
		c *sdk.Cluster
	}
	var hits []hit
	for _, c := range cands {
		if !c.Used {
			continue
		}
		p, err := m.host.Launch(ctx, c)
		if err != nil {
			continue
		}
		defer p.Kill()
		if !p.Desc.Calls.List || !p.Desc.Calls.Destroy {
			continue
		}
		found, err := p.List(ctx, nil)
		if err != nil {
			continue
		}
		for _, sc := range found {
			if sc.ID == id {
				hits = append(hits, hit{p, sc})
			}
		}
	}
	switch len(hits) {
	case 0:
		return notFound
	case 1:
		h := hits[0]
		if err := h.p.Destroy(ctx, host.ClusterRef{ClusterID: id, UID: h.c.UID}, m.emit(id)); err != nil {
			return fmt.Errorf("destroying cluster %q (no local record) of the %s backend: %w", id, h.p.Name, h.p.Wrap("destroy", err))
		}
		return nil
	}
	var names []string
	for _, h := range hits {
		names = append(names, h.p.Name)
	}
	return invalidf("cluster %q has no local record and several backends have one of that id (%s): destroy it with the backend's own tools", id, strings.Join(names, ", "))
}

// Forget drops the record of a cluster without touching its machines.
func (m *Manager) Forget(ctx context.Context, id string) error {
	if _, err := m.load(id); err != nil {
		return err
	}
	return m.store.Remove(ctx, id)
}

// Destroy closes the cluster's connections and its exec transport's
// plugin (Close) and removes the cluster (see Manager.Destroy).
func (c *Cluster) Destroy(ctx context.Context) error {
	if c.manager == nil {
		return errNotManaged
	}
	// Connections to machines about to go: their errors do not matter.
	_ = c.Close()
	return c.manager.Destroy(ctx, c.ID)
}

// CleanOptions choose what Clean looks at.
type CleanOptions struct {
	// Backend limits cleaning to one backend; empty means every backend
	// that can clean.
	Backend string
	// DryRun only lists what would be removed.
	DryRun bool
}

// Clean removes what backends made that belongs to no cluster recorded
// here (leftovers of interrupted or forgotten runs), or only lists it. It
// returns one line per resource.
func (m *Manager) Clean(ctx context.Context, opts CleanOptions) ([]string, error) {
	metas, err := m.store.List()
	if err != nil {
		return nil, err
	}
	cands, err := m.usedPlugins(opts.Backend)
	if err != nil {
		return nil, err
	}
	var (
		lines []string
		errs  []error
	)
	for _, c := range cands {
		p, err := m.host.Launch(ctx, c)
		if err != nil {
			if opts.Backend != "" {
				return nil, err
			}
			m.logger.Debug("skipping a plugin that does not start", "plugin", c.Path, "error", err)
			continue
		}
		if !p.Desc.Calls.Clean {
			p.Kill()
			if opts.Backend != "" {
				return nil, invalidf("the %s backend cannot clean up leftovers", c.Name)
			}
			continue
		}
		var keep []host.ClusterRef
		for _, meta := range metas {
			if meta.Backend == c.Name {
				keep = append(keep, clusterRef(meta))
			}
		}
		err = p.Clean(ctx, keep, opts.DryRun, func(ev host.Event) {
			if ev.Level == "info" {
				lines = append(lines, c.Name+": "+ev.Message)
			} else {
				m.emit("clean")(ev)
			}
		})
		// Wrap before Kill: a plugin killed by us has not crashed.
		err = p.Wrap("clean", err)
		p.Kill()
		if err != nil {
			errs = append(errs, fmt.Errorf("cleaning the %s backend: %w", c.Name, err))
		}
	}
	return lines, errors.Join(errs...)
}

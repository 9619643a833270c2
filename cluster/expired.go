package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
)

// Expired is a cluster DestroyExpired destroyed.
type Expired struct {
	ID        string    `json:"id"`
	Backend   string    `json:"backend"`
	ExpiresAt time.Time `json:"expires_at"`
	// Recorded says this e2e had a record of it (now removed).
	Recorded bool `json:"recorded"`
}

// ExpiredOptions choose what DestroyExpired may destroy.
type ExpiredOptions struct {
	// AnyHome also destroys expired clusters made from another E2E_HOME
	// (another user's or another test run's on a shared Docker engine or
	// AWS account), and those whose backend does not say which E2E_HOME
	// made them: a sweep of forgotten clusters.
	AnyHome bool
}

// DestroyExpired destroys every cluster whose lifespan has passed, as its
// backend reports it (sdk.Cluster.ExpiresAt; backends such as aws give
// every cluster one): the recorded ones, whose records it removes, and
// those a backend that tracks its clusters lists that were made from this
// E2E_HOME (sdk.HomeDetail) but whose record is gone; with opts.AnyHome,
// every expired cluster the backends list. A cluster that an e2e process
// of this E2E_HOME is creating or destroying right now is left alone, and
// so are clusters without a lifespan. It returns what it destroyed and
// every failure, joined; one failure does not stop the others.
func (m *Manager) DestroyExpired(ctx context.Context, opts ExpiredOptions) ([]Expired, error) {
	metas, err := m.store.List()
	if err != nil {
		return nil, err
	}
	cands, err := m.host.Discover()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var (
		done []Expired
		errs []error
	)
	for _, c := range cands {
		if !c.Used {
			continue
		}
		var recorded []state.Metadata
		for _, meta := range metas {
			if meta.Backend == c.Name {
				recorded = append(recorded, meta)
			}
		}
		d, err := m.destroyExpiredOf(ctx, c, recorded, now, opts)
		done = append(done, d...)
		errs = append(errs, err)
	}
	return done, errors.Join(errs...)
}

// destroyExpiredOf destroys the expired clusters of one backend.
func (m *Manager) destroyExpiredOf(ctx context.Context, c plugin.Candidate, recorded []state.Metadata, now time.Time, opts ExpiredOptions) ([]Expired, error) {
	p, err := m.host.Launch(ctx, c)
	if err != nil {
		if len(recorded) == 0 {
			// A plugin that does not start has no clusters to show.
			m.logger.Debug("skipping a plugin that does not start", "plugin", c.Path, "error", err)
			return nil, nil
		}
		return nil, err
	}
	defer p.Kill()
	if !p.Desc.Calls.Destroy {
		return nil, nil
	}
	type found struct {
		sc   *sdk.Cluster
		ref  host.ClusterRef
		meta *state.Metadata
	}
	expired := map[string]found{} // by id and UID
	key := func(sc *sdk.Cluster) string { return sc.ID + "\x00" + sc.UID }
	byID := map[string]*state.Metadata{}
	optionSets := map[string][]byte{"": nil}
	for i := range recorded {
		rec := &recorded[i]
		byID[rec.ID] = rec
		optionSets[string(rec.Options)] = rec.Options
		sc, err := p.Get(ctx, clusterRef(*rec))
		if err != nil {
			continue // not found, or an error e2e list shows
		}
		if isExpired(sc, now) {
			expired[key(sc)] = found{sc: sc, ref: clusterRef(*rec), meta: rec}
		}
	}
	var errs []error
	if p.Desc.Calls.List {
		for _, raw := range optionSets {
			list, err := p.List(ctx, raw)
			if err != nil {
				err = fmt.Errorf("asking the %s backend for its clusters: %w", c.Name, p.Wrap("list", err))
				if len(recorded) == 0 {
					// A backend this e2e never used may simply not be
					// set up here (no credentials): go on.
					m.logger.Debug(err.Error())
					continue
				}
				errs = append(errs, err)
				continue
			}
			for _, sc := range list {
				if !isExpired(sc, now) {
					continue
				}
				if _, ok := expired[key(sc)]; ok {
					continue
				}
				f := found{sc: sc, ref: host.ClusterRef{ClusterID: sc.ID, UID: sc.UID, OptionsJSON: raw}}
				if rec := byID[sc.ID]; rec != nil && (rec.UID == "" || rec.UID == sc.UID) {
					f.ref, f.meta = clusterRef(*rec), rec
				} else if !opts.AnyHome && sc.Details[sdk.HomeDetail] != m.store.Root() {
					// Not ours to judge: another E2E_HOME made it, or the
					// backend cannot say which did.
					continue
				}
				expired[key(sc)] = f
			}
		}
	}
	var done []Expired
	for _, f := range expired {
		if m.store.Busy(f.sc.ID) {
			// Being created (a ttl shorter than the create) or destroyed
			// by another e2e process of this E2E_HOME right now.
			m.logger.Debug("skipping an expired cluster another e2e process is working on", "cluster", f.sc.ID)
			continue
		}
		m.closeClusters(f.sc.ID)
		if err := p.Destroy(ctx, f.ref, m.emit(f.sc.ID)); err != nil {
			errs = append(errs, fmt.Errorf("destroying expired cluster %q: %w", f.sc.ID, p.Wrap("destroy", err)))
			continue
		}
		if f.meta != nil {
			if err := m.store.Remove(ctx, f.meta.ID); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		done = append(done, Expired{ID: f.sc.ID, Backend: c.Name, ExpiresAt: f.sc.ExpiresAt, Recorded: f.meta != nil})
	}
	slices.SortFunc(done, func(a, b Expired) int { return strings.Compare(a.ID, b.ID) })
	return done, errors.Join(errs...)
}

// isExpired reports whether a cluster has a lifespan and it has passed.
func isExpired(sc *sdk.Cluster, now time.Time) bool {
	return !sc.ExpiresAt.IsZero() && !sc.ExpiresAt.After(now)
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk/host"
	"github.com/hashicorp/go-hclog"
)

// Options configure a Manager. The zero value uses the environment:
// $E2E_HOME for state, and the plugins the user has, found as the CLI finds
// them (see Manager.PluginDirs), so a Go test finds the plugins that
// `e2e plugin list` lists.
type Options struct {
	// Home is the state directory; empty means $E2E_HOME or the XDG state dir.
	Home string
	// PluginDirs are searched first for plugins (the CLI's --plugin-dir);
	// then $E2E_PLUGIN_PATH, the installed plugins, the directory of the
	// running executable and $PATH.
	PluginDirs []string
	// Logger receives e2e's and the plugins' logs; nil discards them.
	Logger hclog.Logger
	// Events receives progress and log events of long calls; may be nil.
	Events func(Event)
}

// Event is a progress or log event of a long call.
type Event struct {
	Cluster string
	// Step names what is happening; Current and Total count it when known.
	Step string
	// Node is the node (master_0, ...) a step of per-node work is about,
	// when the step is one node's; Step then ends with it too.
	Node    string
	Current int64
	Total   int64
	// Level is set for log events ("info", "warn", ...), empty for progress.
	Level   string
	Message string
}

// Manager creates and manages clusters. It starts plugins as needed; Close
// stops them and closes the connections of its clusters. A Manager is safe
// for concurrent use.
type Manager struct {
	store  *state.Store
	host   *plugin.Host
	logger hclog.Logger
	events func(Event)

	mu sync.Mutex
	// connected holds the clusters with connections or an exec plugin open,
	// until their Close.
	connected map[*Cluster]struct{}
}

// New returns a Manager.
func New(opts Options) (*Manager, error) {
	home := opts.Home
	if home == "" {
		var err error
		if home, err = state.DefaultRoot(); err != nil {
			return nil, err
		}
	}
	store, err := state.Open(home)
	if err != nil {
		return nil, err
	}
	dirs, err := plugin.DefaultDirs(opts.PluginDirs)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	host, err := plugin.NewHost(plugin.Config{Dirs: dirs, Logger: logger, Home: store.Root()})
	if err != nil {
		return nil, &InvalidError{Err: err}
	}
	events := opts.Events
	if events == nil {
		events = func(Event) {}
	}
	return &Manager{store: store, host: host, logger: logger, events: events}, nil
}

// Close closes the connections of every cluster the manager returned and
// stops every plugin it started. Call it before exiting.
func (m *Manager) Close() {
	m.closeClusters("")
	m.host.Close()
}

// track remembers a cluster that opened a connection or plugin.
func (m *Manager) track(c *Cluster) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.connected == nil {
		m.connected = map[*Cluster]struct{}{}
	}
	m.connected[c] = struct{}{}
}

func (m *Manager) untrack(c *Cluster) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.connected, c)
}

// closeClusters closes the open clusters of id, or all when id is empty.
func (m *Manager) closeClusters(id string) {
	m.mu.Lock()
	var cs []*Cluster
	for c := range m.connected {
		if id == "" || c.ID == id {
			cs = append(cs, c)
		}
	}
	m.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// Home returns the state directory.
func (m *Manager) Home() string { return m.store.Root() }

// open starts a backend's plugin; an unknown backend is the caller's error.
func (m *Manager) open(ctx context.Context, backend string) (*plugin.Plugin, error) {
	p, err := m.host.Open(ctx, backend)
	if errors.Is(err, plugin.ErrNoSuchBackend) {
		return nil, &InvalidError{Err: err}
	}
	return p, err
}

func (m *Manager) emit(cluster string) func(host.Event) {
	return func(ev host.Event) {
		m.events(Event{Cluster: cluster, Step: ev.Step, Current: ev.Current, Total: ev.Total, Level: ev.Level, Message: ev.Message})
	}
}

func (m *Manager) load(id string) (state.Metadata, error) {
	if err := ValidateID(id); err != nil {
		return state.Metadata{}, err
	}
	meta, err := m.store.Load(id)
	if errors.Is(err, state.ErrNotFound) {
		return meta, &InvalidError{Err: fmt.Errorf("%w %q (see `e2e list`)", ErrUnknownCluster, id)}
	}
	return meta, err
}

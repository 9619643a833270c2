package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/hashicorp/go-hclog"
)

// Options configure a Client. The zero value uses the environment:
// $E2E_HOME for state, and the plugins the user has, found as the CLI finds
// them (see Client.PluginDirs), so a Go test finds the plugins that
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
	Step    string
	Current int64
	Total   int64
	// Level is set for log events ("info", "warn", ...), empty for progress.
	Level   string
	Message string
}

// Client creates and manages clusters. It starts plugins as needed; Close
// stops them and closes the connections of its clusters. A Client is safe
// for concurrent use.
type Client struct {
	store  *state.Store
	host   *plugin.Host
	logger hclog.Logger
	events func(Event)

	mu sync.Mutex
	// connected holds the clusters with connections or an exec plugin open,
	// until their Close.
	connected map[*Cluster]struct{}
}

// New returns a Client.
func New(opts Options) (*Client, error) {
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
	host, err := plugin.NewHost(plugin.Config{Dirs: dirs, Logger: logger, StateHome: store.Root()})
	if err != nil {
		return nil, &InvalidError{Err: err}
	}
	events := opts.Events
	if events == nil {
		events = func(Event) {}
	}
	return &Client{store: store, host: host, logger: logger, events: events}, nil
}

// Close closes the connections of every cluster the client returned and
// stops every plugin it started. Call it before exiting.
func (e *Client) Close() {
	e.closeClusters("")
	e.host.Close()
}

// track remembers a cluster that opened a connection or plugin.
func (e *Client) track(c *Cluster) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.connected == nil {
		e.connected = map[*Cluster]struct{}{}
	}
	e.connected[c] = struct{}{}
}

func (e *Client) untrack(c *Cluster) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.connected, c)
}

// closeClusters closes the open clusters of id, or all when id is empty.
func (e *Client) closeClusters(id string) {
	e.mu.Lock()
	var cs []*Cluster
	for c := range e.connected {
		if id == "" || c.ID == id {
			cs = append(cs, c)
		}
	}
	e.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// Home returns the state directory.
func (e *Client) Home() string { return e.store.Root() }

// open starts a backend's plugin; an unknown backend is the caller's error.
func (e *Client) open(ctx context.Context, backend string) (*plugin.Plugin, error) {
	p, err := e.host.Open(ctx, backend)
	if errors.Is(err, plugin.ErrNoSuchBackend) {
		return nil, &InvalidError{Err: err}
	}
	return p, err
}

func (e *Client) emit(cluster string) func(sdk.Event) {
	return func(ev sdk.Event) {
		e.events(Event{Cluster: cluster, Step: ev.Step, Current: ev.Current, Total: ev.Total, Level: ev.Level, Message: ev.Message})
	}
}

func (e *Client) load(id string) (state.Metadata, error) {
	if err := ValidateID(id); err != nil {
		return state.Metadata{}, err
	}
	meta, err := e.store.Load(id)
	if errors.Is(err, state.ErrNotFound) {
		return meta, &InvalidError{Err: fmt.Errorf("%w %q (see `e2e list`)", ErrUnknownCluster, id)}
	}
	return meta, err
}

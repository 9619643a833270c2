package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
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

// Spec describes a cluster to create.
type Spec struct {
	// Backend names the plugin (e2e-backend-NAME).
	Backend string
	// ID defaults to "default".
	ID string
	// Node counts, as the CLI's --masters, --agents and --public-agents: 0
	// is a count not given, which the backend decides (one node, as DC/OS
	// E2E made one of each role, or as many as its options name, such as
	// the existing backend's host lists); None asks for no node of a role.
	Masters, Agents, PublicAgents int
	// Options for the backend, by name as `e2e plugin info` lists them.
	// Secret options are not accepted here: they are read from the
	// environment variable the schema names.
	Options map[string]any
	// SSHUser the core logs in as; empty means the backend's default.
	SSHUser string
	// SSHKey is the user's private key to log in with instead of a key
	// pair e2e generates; SSHAgent offers the keys of the user's ssh-agent
	// ($SSH_AUTH_SOCK) too.
	SSHKey   string
	SSHAgent bool
	// KnownHosts is a known_hosts file with the nodes' host keys, for
	// backends that do not report them (existing machines); default
	// ~/.ssh/known_hosts.
	KnownHosts string
	// AcceptNewHostKeys records the host key of a node met for the first
	// time (like ssh's StrictHostKeyChecking=accept-new); a changed key is
	// always refused.
	AcceptNewHostKeys bool
	// SSHTimeout bounds the wait for every node's sshd after the backend
	// made the machines; zero means DefaultSSHTimeout for a backend that
	// makes its machines (it can destroy them: they have just booted), and
	// a single attempt for machines that already exist, so that a wrong
	// address or a stopped sshd is reported at once.
	SSHTimeout time.Duration
	// Retain keeps whatever was made when Create fails or is cancelled.
	Retain bool
	// SSHProxyCommand, when set, is run for every SSH connection to a node
	// and carries it over its stdin and stdout instead of a dial, as
	// OpenSSH's ProxyCommand (run as `/bin/sh -c "exec COMMAND"`), with
	// the tokens %h (the node's SSH host), %p (port), %r (user), %n (node
	// reference, such as master_0) and %% (a literal %). It is stored with
	// the cluster and used by every later command.
	SSHProxyCommand string
}

func (e *Client) emit(cluster string) func(host.Event) {
	return func(ev host.Event) {
		e.events(Event{Cluster: cluster, Step: ev.Step, Current: ev.Current, Total: ev.Total, Level: ev.Level, Message: ev.Message})
	}
}

// ErrCleanupFailed is wrapped when Create failed or was interrupted and
// removing what it had made failed too (`e2e clean` finds the rest).
var ErrCleanupFailed = errors.New("cleaning up also failed")

// DefaultSSHTimeout is how long Create waits for the sshd of machines the
// backend has just made.
const DefaultSSHTimeout = 3 * time.Minute

// None as a node count of a Spec asks for no node of that role (0 leaves
// the count to the backend).
const None = -1

// sdkCount turns a Spec count into the protocol's: negative is not given.
func sdkCount(n int) int {
	switch n {
	case 0:
		return -1
	case None:
		return 0
	}
	return n
}

// cleanupTimeout bounds how long the core waits for a plugin to clean up
// after cancellation or failure: the cleanup Destroy first waits for the
// cancelled Create's own cleanup (sdk.CleanupTimeout once it noticed, at
// most sdk.StopTimeout), then does its own work. Stopping the plugin
// sooner would kill it half-way through a cleanup within its budget.
const cleanupTimeout = sdk.StopTimeout + 15*time.Second

// Create makes a cluster: it checks the input, reserves the id, generates
// the SSH key pair, asks the backend for the machines and records the
// result. When ctx is cancelled or the backend fails, whatever was made is
// destroyed unless spec.Retain.
func (e *Client) Create(ctx context.Context, spec Spec) (*Cluster, error) {
	if spec.ID == "" {
		spec.ID = DefaultID
	}
	if err := ValidateID(spec.ID); err != nil {
		return nil, err
	}
	if spec.Backend == "" {
		return nil, invalidf("no backend given: choose one with --backend (see `e2e plugin list`)")
	}
	if spec.Masters < None || spec.Agents < None || spec.PublicAgents < None {
		return nil, invalidf("node counts cannot be negative (masters %d, agents %d, public agents %d; cluster.None asks for no node of a role)", spec.Masters, spec.Agents, spec.PublicAgents)
	}
	if spec.Masters == None && spec.Agents == None && spec.PublicAgents == None {
		return nil, invalidf("a cluster needs at least one node")
	}
	if err := checkProxyCommand(spec.SSHProxyCommand); err != nil {
		return nil, err
	}
	masters, agents, public := sdkCount(spec.Masters), sdkCount(spec.Agents), sdkCount(spec.PublicAgents)
	p, err := e.open(ctx, spec.Backend)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	optsJSON, err := e.checkOptions(ctx, p, spec.Options)
	if err != nil {
		return nil, err
	}

	res, err := e.store.Reserve(ctx, spec.ID)
	if errors.Is(err, state.ErrExists) {
		existing, _ := e.store.Load(spec.ID)
		return nil, invalidf("cluster %q exists already (backend %s): destroy it with `e2e destroy -c %s` or choose another id with -c", spec.ID, existing.Backend, spec.ID)
	}
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = res.Abort()
		}
		res.Release()
	}()

	if p.Desc.Calls.List {
		known, err := p.List(ctx, optsJSON)
		if err != nil {
			return nil, fmt.Errorf("asking the %s backend for its clusters: %w", spec.Backend, p.Wrap("list", err))
		}
		for _, c := range known {
			if c.ID == spec.ID {
				return nil, invalidf("the %s backend already has a cluster %q that this e2e has no record of (made from another E2E_HOME?): choose another id with -c", spec.Backend, spec.ID)
			}
		}
	}

	pub, keyPath, err := e.sshKey(spec, res)
	if err != nil {
		return nil, err
	}
	call := host.CreateRequest{
		ClusterID: spec.ID, Masters: masters, Agents: agents, PublicAgents: public,
		OptionsJSON: optsJSON, SSHPublicKey: pub, SSHUser: spec.SSHUser, Retain: spec.Retain,
	}
	meta := state.Metadata{
		ID: spec.ID, Backend: spec.Backend, PluginVersion: p.Desc.Version, Options: optsJSON,
		Counts:  state.Counts{Masters: max(masters, 0), Agents: max(agents, 0), PublicAgents: max(public, 0)},
		SSHUser: spec.SSHUser, SSHKeyPath: keyPath, SSHAgent: spec.SSHAgent, CreatedAt: time.Now().UTC(),
		SSHProxyCommand: spec.SSHProxyCommand,
	}
	sc, err := p.Create(ctx, call, e.emit(spec.ID))
	if err != nil {
		err = p.Wrap("create", err)
		if ctx.Err() != nil {
			err = fmt.Errorf("creating cluster %q: interrupted: %w", spec.ID, ctx.Err())
		} else {
			err = fmt.Errorf("creating cluster %q: %w", spec.ID, err)
		}
		if spec.Retain {
			// Keep the record so the retained machines can be inspected
			// and destroyed later.
			if cerr := res.Commit(meta); cerr == nil {
				committed = true
			}
			return nil, fmt.Errorf("%w (what was made is retained: `e2e destroy -c %s` removes it)", err, spec.ID)
		}
		if derr := e.cleanupAfterFailedCreate(spec.Backend, p, host.ClusterRef{ClusterID: spec.ID, OptionsJSON: optsJSON}); derr != nil {
			return nil, fmt.Errorf("%w; %w: %v", err, ErrCleanupFailed, derr)
		}
		if cerr := sdkInvalid(err, spec.Backend); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	meta.UID, meta.Record = sc.UID, sc.Record
	meta.Nodes = nodesToState(sc.Nodes, spec.SSHUser)
	meta.Counts = countRoles(sc.Nodes)
	// The keys the backend vouches for are pinned under each node's
	// identity, not its address, which may change (a restarted container
	// gets a new port).
	hostKeys := vouchedKeys(spec.ID, sc.Nodes)
	for i := range meta.Nodes {
		if len(sc.Nodes[i].HostKeys) > 0 {
			meta.Nodes[i].HostKeyAlias = hostKeyAlias(spec.ID, sc.Nodes[i])
		}
	}
	if len(hostKeys) > 0 {
		if err := e.store.AddKnownHosts(spec.ID, hostKeys); err != nil {
			return nil, e.failAfterCreate(spec, p, optsJSON, sc.UID, err)
		}
	}
	if kh, err := userKnownHosts(spec.KnownHosts, len(hostKeys) > 0); err != nil {
		return nil, e.failAfterCreate(spec, p, optsJSON, sc.UID, err)
	} else if kh != "" {
		meta.KnownHosts = []string{kh}
	}
	c := e.toCluster(meta, sc, p.Desc)
	if p.Desc.NodesRunSSHD {
		timeout := spec.SSHTimeout
		if timeout <= 0 && p.Desc.Calls.Destroy {
			timeout = DefaultSSHTimeout
		}
		e.events(Event{Cluster: spec.ID, Step: "check SSH on every node"})
		if err := c.verifySSH(ctx, spec.AcceptNewHostKeys, timeout); err != nil {
			err = sshUsageError(err)
			ferr := e.cleanupAfterBadNodes(spec, p, optsJSON, sc.UID, fmt.Errorf("checking SSH on the nodes of cluster %q: %w", spec.ID, err))
			if IsInvalid(err) {
				return nil, &InvalidError{Err: ferr}
			}
			return nil, ferr
		}
	}
	if err := res.Commit(meta); err != nil {
		return nil, e.failAfterCreate(spec, p, optsJSON, sc.UID, err)
	}
	committed = true
	return c, nil
}

// sshKey returns the public key the backend authorises and the private
// key file the core logs in with: the user's (--ssh-key, --ssh-agent) or a
// pair generated in the cluster's state directory.
func (e *Client) sshKey(spec Spec, res *state.Reservation) (pub, keyPath string, err error) {
	switch {
	case spec.SSHKey != "":
		abs, err := filepath.Abs(spec.SSHKey)
		if err != nil {
			return "", "", err
		}
		signer, err := ssh.LoadKey(abs)
		if err != nil {
			if spec.SSHAgent {
				// A key with a passphrase lives in the agent; use its
				// public half from PATH.pub.
				if b, perr := os.ReadFile(abs + ".pub"); perr == nil {
					return strings.TrimSpace(string(b)), "", nil
				}
			}
			return "", "", &InvalidError{Err: fmt.Errorf("--ssh-key: %w", err)}
		}
		return publicKeyOf(signer), abs, nil
	case spec.SSHAgent:
		signers, closer, err := ssh.AgentSigners()
		if err != nil {
			return "", "", &InvalidError{Err: fmt.Errorf("--ssh-agent: %w", err)}
		}
		defer closer.Close()
		if len(signers) == 0 {
			return "", "", &InvalidError{Err: errors.New("--ssh-agent: the agent holds no keys (add one with ssh-add)")}
		}
		return publicKeyOf(signers[0]), "", nil
	}
	pub, keyPath, err = res.GenerateKey()
	if err != nil {
		return "", "", fmt.Errorf("generating the cluster's SSH key: %w", err)
	}
	return pub, keyPath, nil
}

// userKnownHosts returns the user's known_hosts file to consult: the one
// given, or ~/.ssh/known_hosts when the backend pinned no host keys and it
// exists.
func userKnownHosts(given string, pinned bool) (string, error) {
	if given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", &InvalidError{Err: fmt.Errorf("--known-hosts: %w", err)}
		}
		return abs, nil
	}
	if pinned {
		return "", nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", nil
	}
	def := filepath.Join(home, ".ssh", "known_hosts")
	if _, err := os.Stat(def); err != nil {
		return "", nil
	}
	return def, nil
}

// failAfterCreate destroys a cluster the backend made when the core could
// not record it, so nothing is left that e2e does not know of.
func (e *Client) failAfterCreate(spec Spec, p *plugin.Plugin, optsJSON []byte, uid string, err error) error {
	return e.cleanupAfterBadNodes(spec, p, optsJSON, uid, fmt.Errorf("recording cluster %q: %w", spec.ID, err))
}

// cleanupAfterBadNodes destroys what the backend made (unless retained)
// after the core found it unusable, and returns err.
func (e *Client) cleanupAfterBadNodes(spec Spec, p *plugin.Plugin, optsJSON []byte, uid string, err error) error {
	if spec.Retain {
		return err
	}
	if derr := e.cleanupAfterFailedCreate(spec.Backend, p, host.ClusterRef{ClusterID: spec.ID, UID: uid, OptionsJSON: optsJSON}); derr != nil {
		return fmt.Errorf("%w; %w: %v", err, ErrCleanupFailed, derr)
	}
	return err
}

// sdkInvalid turns the backend's refusal of the input into an InvalidError;
// when options are at fault it points to where they are described.
func sdkInvalid(err error, backend string) error {
	var de *sdk.DiagnosticsError
	if !errors.As(err, &de) {
		return nil
	}
	for _, d := range de.Diagnostics {
		if d.Option != "" {
			return invalidf("%s (see `e2e plugin info %s`)", de.Error(), backend)
		}
	}
	return &InvalidError{Err: de}
}

// cleanupAfterFailedCreate calls the idempotent Destroy with a context that
// is not cancelled. The plugin's SDK makes Destroy wait until a cancelled
// Create has finished its own cleanup, so this also waits for that. A
// crashed plugin is started again for it.
func (e *Client) cleanupAfterFailedCreate(backend string, p *plugin.Plugin, ref host.ClusterRef) error {
	if !p.Desc.Calls.Destroy {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if p.Exited() {
		fresh, err := e.open(ctx, backend)
		if err != nil {
			return err
		}
		defer fresh.Kill()
		p = fresh
	}
	return p.Wrap("destroy", p.Destroy(ctx, ref, e.emit(ref.ClusterID)))
}

// checkOptions turns the caller's options into JSON, refuses secrets, and
// has the plugin validate them against its schema.
func (e *Client) checkOptions(ctx context.Context, p *plugin.Plugin, opts map[string]any) ([]byte, error) {
	for name := range opts {
		if o, ok := p.Desc.Options.Lookup(name); ok && o.Secret {
			return nil, invalidf("option %q is secret and is not taken from the command line or cluster file: set the environment variable %s instead", name, o.Env)
		}
	}
	var raw []byte
	if len(opts) > 0 {
		var err error
		if raw, err = json.Marshal(opts); err != nil {
			return nil, invalidf("options: %v", err)
		}
	}
	diags, err := p.Validate(ctx, raw)
	if err != nil {
		return nil, p.Wrap("validate", err)
	}
	var msgs []string
	for _, d := range diags {
		if d.Severity == sdk.SeverityWarning {
			e.logger.Warn(d.Summary, "backend", p.Name, "option", d.Option)
			continue
		}
		msgs = append(msgs, d.Summary)
	}
	if len(msgs) > 0 {
		return nil, invalidf("%s: %s (see `e2e plugin info %s`)", p.Name, strings.Join(msgs, "; "), p.Name)
	}
	return raw, nil
}

// countRoles counts a backend's nodes by role.
func countRoles(nodes []sdk.Node) state.Counts {
	var n state.Counts
	for _, node := range nodes {
		switch Role(node.Role) {
		case Master:
			n.Masters++
		case Agent:
			n.Agents++
		case PublicAgent:
			n.PublicAgents++
		}
	}
	return n
}

func nodesToState(nodes []sdk.Node, sshUser string) []state.Node {
	out := make([]state.Node, 0, len(nodes))
	for _, n := range nodes {
		user := n.SSH.User
		if sshUser != "" {
			user = sshUser
		}
		out = append(out, state.Node{Role: string(n.Role), Index: n.Index, Name: n.Name, Hostname: n.Hostname,
			PrivateAddress: n.PrivateAddress, PublicAddress: n.PublicAddress,
			SSHHost: n.SSH.Host, SSHPort: n.SSH.Port, SSHUser: user})
	}
	return out
}

// toCluster makes the Cluster the caller sees from the record and what the
// backend reports now: nodes with their current state and endpoint, the
// alias their host keys are pinned under, and every recorded node the
// backend no longer reports as missing.
func (e *Client) toCluster(meta state.Metadata, sc *sdk.Cluster, desc host.Description) *Cluster {
	c := &Cluster{ID: meta.ID, UID: meta.UID, Backend: meta.Backend, PluginVersion: desc.Version,
		CreatedAt: meta.CreatedAt, StateDir: e.store.ClusterDir(meta.ID), SSHKeyPath: meta.SSHKeyPath, client: e,
		Installed: meta.Installed, startStop: desc.Calls.StartStop, SSHProxyCommand: meta.SSHProxyCommand,
		access: accessOf(e, meta), conns: &conns{}}
	recorded := map[string]state.Node{}
	for _, n := range meta.Nodes {
		recorded[nodeRef(Role(n.Role), n.Index)] = n
	}
	seen := map[string]bool{}
	if sc != nil {
		c.Details, c.Transport, c.ExpiresAt = sc.Details, sc.Transport, sc.ExpiresAt
		for i, n := range nodesToState(sc.Nodes, meta.SSHUser) {
			node := nodeFromState(n, nodeStateOf(sc.Nodes[i].State))
			node.HostKeyAlias = recorded[node.Ref()].HostKeyAlias
			seen[node.Ref()] = true
			c.Nodes = append(c.Nodes, node)
		}
	}
	for _, n := range meta.Nodes {
		if node := nodeFromState(n, NodeMissing); !seen[node.Ref()] {
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

func nodeFromState(n state.Node, st NodeState) Node {
	return Node{Role: Role(n.Role), Index: n.Index, Name: n.Name, Hostname: n.Hostname,
		PrivateAddress: n.PrivateAddress, PublicAddress: n.PublicAddress,
		SSH: SSHEndpoint{Host: n.SSHHost, Port: n.SSHPort, User: n.SSHUser}, State: st, HostKeyAlias: n.HostKeyAlias}
}

func sortNodes(nodes []Node) {
	order := map[Role]int{Master: 0, Agent: 1, PublicAgent: 2}
	sort.SliceStable(nodes, func(i, j int) bool {
		if nodes[i].Role != nodes[j].Role {
			return order[nodes[i].Role] < order[nodes[j].Role]
		}
		return nodes[i].Index < nodes[j].Index
	})
}

func ref(meta state.Metadata) host.ClusterRef {
	return host.ClusterRef{ClusterID: meta.ID, UID: meta.UID, OptionsJSON: meta.Options, Record: meta.Record}
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

// Get returns a cluster as its backend sees it now.
func (e *Client) Get(ctx context.Context, id string) (*Cluster, error) {
	meta, err := e.load(id)
	if err != nil {
		return nil, err
	}
	p, err := e.open(ctx, meta.Backend)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	sc, err := p.Get(ctx, ref(meta))
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, fmt.Errorf("cluster %q is recorded but the %s backend no longer has it: `e2e destroy -c %s` drops the record", id, meta.Backend, id)
	}
	if err != nil {
		return nil, fmt.Errorf("getting cluster %q from the %s backend: %w", id, meta.Backend, p.Wrap("get", err))
	}
	return e.toCluster(meta, sc, p.Desc), nil
}

// Summary is one line of List.
type Summary struct {
	ID        string    `json:"id"`
	Backend   string    `json:"backend"`
	Masters   int       `json:"masters"`
	Agents    int       `json:"agents"`
	Public    int       `json:"public_agents"`
	CreatedAt time.Time `json:"created_at"`
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
}

// ListOptions filter List.
type ListOptions struct {
	// Backend limits the list to one backend.
	Backend string
}

// List returns the recorded clusters with their status according to their
// backends, and clusters the backends know of that have no record here.
func (e *Client) List(ctx context.Context, opts ListOptions) ([]Summary, error) {
	metas, err := e.store.List()
	if err != nil {
		return nil, err
	}
	byBackend := map[string][]state.Metadata{}
	for _, m := range metas {
		if opts.Backend == "" || m.Backend == opts.Backend {
			byBackend[m.Backend] = append(byBackend[m.Backend], m)
		}
	}
	if opts.Backend != "" {
		if _, err := plugin.Find(e.host.Dirs(), opts.Backend); err != nil {
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
			rows := e.listBackend(ctx, backend, ms)
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

func (e *Client) listBackend(ctx context.Context, backend string, metas []state.Metadata) []Summary {
	var rows []Summary
	p, err := e.open(ctx, backend)
	if err != nil {
		for _, m := range metas {
			rows = append(rows, summary(m, "error: "+err.Error()))
		}
		return rows
	}
	defer p.Kill()
	seen := map[string]bool{}
	for _, m := range metas {
		seen[m.ID] = true
		sc, err := p.Get(ctx, ref(m))
		switch {
		case errors.Is(err, sdk.ErrNotFound):
			rows = append(rows, summary(m, "missing"))
		case err != nil:
			rows = append(rows, summary(m, "error: "+p.Wrap("get", err).Error()))
		default:
			c := e.toCluster(m, sc, p.Desc)
			row := summary(m, c.Status)
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
	for _, m := range metas {
		optionSets[string(m.Options)] = m.Options
	}
	if len(optionSets) == 0 {
		optionSets[""] = nil
	}
	for _, raw := range optionSets {
		found, err := p.List(ctx, raw)
		if err != nil {
			e.logger.Debug("listing clusters", "backend", backend, "error", err)
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
				states[nodeRef(Role(node.Role), node.Index)] = nodeStateOf(node.State)
			}
			rows = append(rows, Summary{ID: c.ID, Backend: backend, CreatedAt: c.CreatedAt, Status: "untracked",
				Masters: n.Masters, Agents: n.Agents, Public: n.PublicAgents, Nodes: states, ExpiresAt: c.ExpiresAt})
		}
	}
	return rows
}

func summary(m state.Metadata, status string) Summary {
	return Summary{ID: m.ID, Backend: m.Backend, Masters: m.Counts.Masters, Agents: m.Counts.Agents,
		Public: m.Counts.PublicAgents, CreatedAt: m.CreatedAt, Status: status}
}

// Destroy removes a cluster's machines and its record, after closing the
// connections of the client's clusters of that id. Destroying a cluster
// the backend no longer has only drops the record.
func (e *Client) Destroy(ctx context.Context, id string) error {
	e.closeClusters(id)
	meta, err := e.load(id)
	if errors.Is(err, ErrUnknownCluster) {
		return e.destroyUntracked(ctx, id, err)
	}
	if err != nil {
		return err
	}
	p, err := e.open(ctx, meta.Backend)
	if err != nil {
		return err
	}
	defer p.Kill()
	if !p.Desc.Calls.Destroy {
		return invalidf("the %s backend cannot destroy cluster %q: e2e did not create these machines; `e2e forget -c %s` drops the record", meta.Backend, id, id)
	}
	if err := p.Destroy(ctx, ref(meta), e.emit(id)); err != nil {
		return fmt.Errorf("destroying cluster %q: %w", id, p.Wrap("destroy", err))
	}
	return e.store.Remove(ctx, id)
}

// destroyUntracked destroys a cluster this e2e has no record of (made from
// another E2E_HOME) when exactly one backend that tracks its clusters has it
// with its default options; otherwise notFound is returned.
func (e *Client) destroyUntracked(ctx context.Context, id string, notFound error) error {
	cands, err := e.host.Discover()
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
		p, err := e.host.Launch(ctx, c)
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
		if err := h.p.Destroy(ctx, host.ClusterRef{ClusterID: id, UID: h.c.UID}, e.emit(id)); err != nil {
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
func (e *Client) Forget(ctx context.Context, id string) error {
	if _, err := e.load(id); err != nil {
		return err
	}
	return e.store.Remove(ctx, id)
}

// IDs returns the ids of every recorded cluster.
func (e *Client) IDs() ([]string, error) {
	metas, err := e.store.List()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(metas))
	for _, m := range metas {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// Destroy closes the cluster's connections and its exec transport's
// plugin (Close) and removes the cluster (see Client.Destroy).
func (c *Cluster) Destroy(ctx context.Context) error {
	if c.client == nil {
		return errors.New("cluster was not made by a cluster.Client")
	}
	// Connections to machines about to go: their errors do not matter.
	_ = c.Close()
	return c.client.Destroy(ctx, c.ID)
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
func (e *Client) Clean(ctx context.Context, opts CleanOptions) ([]string, error) {
	metas, err := e.store.List()
	if err != nil {
		return nil, err
	}
	var cands []plugin.Candidate
	if opts.Backend != "" {
		c, err := plugin.Find(e.host.Dirs(), opts.Backend)
		if err != nil {
			return nil, &InvalidError{Err: err}
		}
		cands = []plugin.Candidate{c}
	} else {
		all, err := e.host.Discover()
		if err != nil {
			return nil, err
		}
		for _, c := range all {
			if c.Used {
				cands = append(cands, c)
			}
		}
	}
	var (
		lines []string
		errs  []error
	)
	for _, c := range cands {
		p, err := e.host.Launch(ctx, c)
		if err != nil {
			if opts.Backend != "" {
				return nil, err
			}
			e.logger.Debug("skipping a plugin that does not start", "plugin", c.Path, "error", err)
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
		for _, m := range metas {
			if m.Backend == c.Name {
				keep = append(keep, ref(m))
			}
		}
		err = p.Clean(ctx, keep, opts.DryRun, func(ev host.Event) {
			if ev.Level == "info" {
				lines = append(lines, c.Name+": "+ev.Message)
			} else {
				e.emit("clean")(ev)
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

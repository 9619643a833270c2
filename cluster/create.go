package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
)

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
	// id, such as master_0) and %% (a literal %). It is stored with the
	// cluster and used by every later command.
	SSHProxyCommand string
	// LogsOnFailure, when set, is a directory where Create writes a logs
	// bundle (Cluster.CollectLogs) when the machines were made but the
	// cluster is unusable (a node's sshd does not accept the key, say),
	// before it removes them; the error then names the directory. A
	// failure inside the backend's Create leaves nothing to collect: the
	// backend has removed what it made (see Retain).
	LogsOnFailure string
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
func (m *Manager) Create(ctx context.Context, spec Spec) (*Cluster, error) {
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
	p, err := m.open(ctx, spec.Backend)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	optsJSON, err := m.checkOptions(ctx, p, spec.Options)
	if err != nil {
		return nil, err
	}

	res, err := m.store.Reserve(ctx, spec.ID)
	if errors.Is(err, state.ErrExists) {
		existing, _ := m.store.Load(spec.ID)
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

	pub, keyPath, err := m.sshKey(spec, res)
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
	sc, err := p.Create(ctx, call, m.emit(spec.ID))
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
		if derr := m.cleanupAfterFailedCreate(spec.Backend, p, host.ClusterRef{ClusterID: spec.ID, OptionsJSON: optsJSON}); derr != nil {
			return nil, fmt.Errorf("%w; %w: %v", err, ErrCleanupFailed, derr)
		}
		if cerr := sdkInvalid(err, spec.Backend); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	meta.UID, meta.Record = sc.UID, sc.Record
	meta.Nodes = nodeRecords(sc.Nodes, spec.SSHUser)
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
		if err := m.store.AddKnownHosts(spec.ID, hostKeys); err != nil {
			return nil, m.failAfterCreate(spec, p, optsJSON, sc.UID, err)
		}
	}
	if kh, err := userKnownHosts(spec.KnownHosts, len(hostKeys) > 0); err != nil {
		return nil, m.failAfterCreate(spec, p, optsJSON, sc.UID, err)
	} else if kh != "" {
		meta.KnownHosts = []string{kh}
	}
	c := m.toCluster(meta, sc, p.Desc)
	if p.Desc.NodesRunSSHD {
		timeout := spec.SSHTimeout
		if timeout <= 0 && p.Desc.Calls.Destroy {
			timeout = DefaultSSHTimeout
		}
		m.events(Event{Cluster: spec.ID, Step: "check SSH on every node"})
		if err := c.verifySSH(ctx, spec.AcceptNewHostKeys, timeout); err != nil {
			err = sshUsageError(err)
			err = m.logsOnFailure(ctx, c, spec.LogsOnFailure, p, host.ClusterRef{ClusterID: spec.ID, UID: sc.UID, OptionsJSON: optsJSON}, err)
			ferr := m.cleanupAfterBadNodes(spec, p, optsJSON, sc.UID, fmt.Errorf("checking SSH on the nodes of cluster %q: %w", spec.ID, err))
			if IsInvalid(err) {
				return nil, &InvalidError{Err: ferr}
			}
			return nil, ferr
		}
	}
	if err := res.Commit(meta); err != nil {
		return nil, m.failAfterCreate(spec, p, optsJSON, sc.UID, err)
	}
	committed = true
	return c, nil
}

// sshKey returns the public key the backend authorises and the private
// key file the core logs in with: the user's (--ssh-key, --ssh-agent) or a
// pair generated in the cluster's state directory.
func (m *Manager) sshKey(spec Spec, res *state.Reservation) (pub, keyPath string, err error) {
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
func (m *Manager) failAfterCreate(spec Spec, p *plugin.Plugin, optsJSON []byte, uid string, err error) error {
	return m.cleanupAfterBadNodes(spec, p, optsJSON, uid, fmt.Errorf("recording cluster %q: %w", spec.ID, err))
}

// cleanupAfterBadNodes destroys what the backend made (unless retained)
// after the core found it unusable, and returns err.
func (m *Manager) cleanupAfterBadNodes(spec Spec, p *plugin.Plugin, optsJSON []byte, uid string, err error) error {
	if spec.Retain {
		return err
	}
	if derr := m.cleanupAfterFailedCreate(spec.Backend, p, host.ClusterRef{ClusterID: spec.ID, UID: uid, OptionsJSON: optsJSON}); derr != nil {
		return fmt.Errorf("%w; %w: %v", err, ErrCleanupFailed, derr)
	}
	return err
}

// OptionError is a backend's refusal of the options of a Spec: an unknown
// name, a value of the wrong type, a required option left out (when it
// checks them), or a value it cannot use (when it creates: a Docker
// network that does not exist). It is inside an *InvalidError; the CLI
// uses Problems to say where each refused option was given.
type OptionError struct {
	Backend  string
	Problems []OptionProblem
}

// OptionProblem is one refused option, as the backend words it; Option
// is empty when the problem is not one option's.
type OptionProblem struct {
	Option  string
	Message string
}

// Error is "BACKEND: MESSAGE; MESSAGE", with one hint: where options are
// described, unless a message has a hint of its own.
func (e *OptionError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
	}
	return e.Backend + ": " + strings.Join(msgs, "; ") + e.Hint()
}

// Hint is " (see `e2e plugin info BACKEND`)" when an option is at fault and
// no message has a hint ("(see ...)") of its own, else empty.
func (e *OptionError) Hint() string {
	named := false
	for _, p := range e.Problems {
		if strings.Contains(p.Message, "(see ") {
			return ""
		}
		named = named || p.Option != ""
	}
	if !named {
		return ""
	}
	return fmt.Sprintf(" (see `e2e plugin info %s`)", e.Backend)
}

// optionError turns the error diagnostics of a backend into an
// *InvalidError holding an *OptionError; nil when there are none.
func optionError(backend string, diags []sdk.Diagnostic) error {
	oe := &OptionError{Backend: backend}
	for _, d := range diags {
		if d.Severity != sdk.SeverityWarning {
			oe.Problems = append(oe.Problems, OptionProblem{Option: d.Option, Message: d.Summary})
		}
	}
	if len(oe.Problems) == 0 {
		return nil
	}
	return &InvalidError{Err: oe}
}

// sdkInvalid turns the backend's refusal of the input into an InvalidError
// (an *OptionError inside); nil when err is no refusal.
func sdkInvalid(err error, backend string) error {
	var de *sdk.DiagnosticsError
	if !errors.As(err, &de) {
		return nil
	}
	if oe := optionError(backend, de.Diagnostics); oe != nil {
		return oe
	}
	return &InvalidError{Err: de}
}

// cleanupAfterFailedCreate calls the idempotent Destroy with a context that
// is not cancelled. The plugin's SDK makes Destroy wait until a cancelled
// Create has finished its own cleanup, so this also waits for that. A
// crashed plugin is started again for it.
func (m *Manager) cleanupAfterFailedCreate(backend string, p *plugin.Plugin, ref host.ClusterRef) error {
	if !p.Desc.Calls.Destroy {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if p.Exited() {
		fresh, err := m.open(ctx, backend)
		if err != nil {
			return err
		}
		defer fresh.Kill()
		p = fresh
	}
	return p.Wrap("destroy", p.Destroy(ctx, ref, m.emit(ref.ClusterID)))
}

// checkOptions turns the caller's options into JSON, refuses secrets, and
// has the plugin validate them against its schema.
func (m *Manager) checkOptions(ctx context.Context, p *plugin.Plugin, opts map[string]any) ([]byte, error) {
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
	for _, d := range diags {
		if d.Severity == sdk.SeverityWarning {
			m.logger.Warn(d.Summary, "backend", p.Name, "option", d.Option)
		}
	}
	if err := optionError(p.Name, diags); err != nil {
		return nil, err
	}
	return raw, nil
}

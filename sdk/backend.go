// Package sdk is what a backend plugin for e2e is written with.
//
// A backend creates, finds and destroys the machines of a cluster; the e2e
// core does everything that happens on them. A plugin author implements
// Backend in plain Go and calls Serve from main:
//
//	func main() { sdk.Serve(&myBackend{}) }
//
// # What a backend can do, and what its nodes are
//
// One rule says what a backend can do: what the core can call, you
// implement; what your nodes are, you say in Info.
//
//   - Calls. Backend (Info, Create, Get) is the minimum. Every other call is
//     an optional interface whose presence is the capability: Destroyer
//     (e2e destroy, cleanup after a failed create), Lister (the backend finds
//     its clusters itself), StartStopper (e2e stop and e2e start), Executor
//     (a transport of its own instead of SSH), Cleaner (e2e clean),
//     Validator (checks beyond the schema), BaseConfiger (DC/OS installer
//     defaults), NodeLogger (the backend's own view of a node, for
//     e2e logs), Doctor (checks of what the backend needs, for e2e
//     doctor). There is no flag to set beside them, so a backend cannot
//     declare a call it does not implement, nor implement one that never
//     runs.
//   - Facts. What is not a call is declared in Info: NodesRunSSHD (the
//     nodes are machines whose sshd accepts the cluster's key, so the core
//     logs in to every node after Create and Start) and InstallMethods. Per
//     cluster, Cluster.Transport says how the core reaches the nodes, and
//     Node.State whether each node runs.
//
// The SDK owns the plugin handshake, derives the protocol's capabilities
// from the above, validates options against the schema the backend
// declares, turns panics into errors, logs hclog JSON to stderr and exits
// when the e2e process that started it dies. The core's side of the
// protocol is in the host subpackage, which backends never import.
package sdk

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"time"
)

// ProtocolVersion is the major version of the backend protocol this SDK
// speaks. Within a major only additive changes are made.
const ProtocolVersion = 1

// Role is the part a node plays in a cluster.
type Role string

// Roles, as DC/OS E2E named them. The installer boundary translates them to
// DC/OS's master, slave and slave_public.
const (
	RoleMaster      Role = "master"
	RoleAgent       Role = "agent"
	RolePublicAgent Role = "public_agent"
)

// Roles lists every role in the order nodes are usually shown.
func Roles() []Role { return []Role{RoleMaster, RoleAgent, RolePublicAgent} }

// CompareRoles orders roles as Roles lists them (an unknown role last), for
// slices.SortFunc: negative when a comes first, 0 when equal, positive
// otherwise. Node order is this, then the index.
func CompareRoles(a, b Role) int {
	rank := func(r Role) int {
		if i := slices.Index(Roles(), r); i >= 0 {
			return i
		}
		return len(Roles())
	}
	return cmp.Compare(rank(a), rank(b))
}

// InstallMethod is a way the core may install a distribution on the nodes.
type InstallMethod string

// Install methods.
const (
	InstallFromPath InstallMethod = "path"
	InstallFromURL  InstallMethod = "url"
)

// Info describes a backend: who it is, the options it takes, and the facts
// about its nodes that are not calls (see the package documentation).
type Info struct {
	// Name as in the executable name e2e-backend-NAME.
	Name string
	// Version of the plugin itself (set it with -ldflags).
	Version string
	// Commit the plugin was built from, if known.
	Commit string
	// Summary is one line on what the backend makes.
	Summary string
	// Options the backend takes.
	Options Schema
	// NodesRunSSHD says the nodes are machines whose sshd accepts the
	// cluster's key once Create (or Start) has returned: the core then logs
	// in to every node, retrying while sshd starts, and pins host keys
	// before it records the cluster. Leave it false for nodes with no sshd
	// (the core then never logs in at creation). Nodes reached over SSH need the
	// sftp subsystem (send-file, download), a POSIX login shell and env;
	// no pty and no AcceptEnv (docs/plugin-authoring.md, "What a node must
	// offer"). sdktest logs in to them and checks this.
	NodesRunSSHD bool
	// InstallMethods are the ways the core may install a distribution on
	// the nodes; empty means none. The core installs either way: declare
	// InstallFromPath when it can copy a large file to the nodes, and
	// InstallFromURL when the nodes can download one themselves.
	InstallMethods []InstallMethod
}

// CreateRequest asks for the machines of a new cluster.
type CreateRequest struct {
	ClusterID string
	// Node counts: what the user gave, or 1 for a count not given (see
	// CountGiven, for backends whose options name the nodes).
	Masters      int
	Agents       int
	PublicAgents int
	// Given holds the roles whose count the user gave explicitly.
	Given map[Role]bool
	// Options are validated against the schema; defaults are filled in.
	Options Options
	// SSHPublicKey (authorized_keys format) is the only key a backend ever
	// sees; the private key stays with the core.
	SSHPublicKey string
	// SSHUser the core will log in as; empty means the backend's default.
	SSHUser string
	// Retain asks the backend to keep what it made when Create fails or is
	// cancelled, for debugging, instead of removing it.
	Retain bool
}

// CountGiven reports whether the user gave the count of a role.
func (r CreateRequest) CountGiven(role Role) bool { return r.Given[role] }

// Count returns the number of nodes requested for a role.
func (r CreateRequest) Count(role Role) int {
	switch role {
	case RoleMaster:
		return r.Masters
	case RoleAgent:
		return r.Agents
	case RolePublicAgent:
		return r.PublicAgents
	}
	return 0
}

// ClusterRef is what every call after Create carries to find the cluster.
type ClusterRef struct {
	ClusterID string
	// UID is the Cluster.UID Create returned, when the core knows it.
	UID string
	// Options the cluster was created with, without secrets (secrets are
	// read again from the environment).
	Options Options
	// Record is Cluster.Record as Create returned it, for clusters the core
	// has recorded (what a backend that is no Lister finds its clusters by).
	Record []byte
}

// SSHEndpoint is where the core dials a node's sshd.
type SSHEndpoint struct {
	Host string `json:"host"`
	// Port is the TCP port; 0 for a node that does not run.
	Port int    `json:"port"`
	User string `json:"user"`
}

// NodeState says whether a node is up, as its backend sees it now.
type NodeState string

// Node states. The empty state means running, so a backend that does not
// report states (or a plugin built before they existed) reads as running.
const (
	// NodeRunning: the machine runs; its SSH endpoint is where the core
	// dials it.
	NodeRunning NodeState = "running"
	// NodeStopped: the machine exists but is not running (an exited
	// container, a stopped instance). Its SSH port may be 0; the core does
	// not dial it, and tells the user to start the cluster.
	NodeStopped NodeState = "stopped"
	// NodeMissing: the machine is gone although the rest of the cluster
	// exists (for example a container removed by hand).
	NodeMissing NodeState = "missing"
)

// Running reports whether the state is running (or empty, which means the
// same).
func (s NodeState) Running() bool { return s == "" || s == NodeRunning }

// Node is one machine of a cluster.
type Node struct {
	Role  Role `json:"role"`
	Index int  `json:"index"`
	// Name is what the backend calls the node (container name, instance id).
	Name string `json:"name"`
	// Hostname is the node's hostname, if known. Users pick nodes by it:
	// give each node its own (of nodes sharing one, the first in node
	// order is picked).
	Hostname       string `json:"hostname,omitempty"`
	PrivateAddress string `json:"private_address,omitempty"`
	PublicAddress  string `json:"public_address,omitempty"`
	// SSH is where the core dials the node's sshd.
	SSH SSHEndpoint `json:"ssh"`
	// HostKeys are the node's SSH host public keys, one authorized_keys
	// line each (a trailing comment, as in ssh-keygen's .pub files, is
	// allowed), when the backend knows them; the core pins them under the
	// node's identity, not its address, so they stay valid when the SSH
	// port changes (a restarted container).
	HostKeys []string `json:"host_keys,omitempty"`
	// State is whether the node runs; empty means running.
	State NodeState `json:"state,omitempty"`
}

// Transport is how the core reaches a cluster's nodes.
type Transport string

// Transports. The empty transport means SSH.
const (
	// TransportSSH: the core dials each node's sshd (Node.SSH).
	TransportSSH Transport = "ssh"
	// TransportExec: the core runs every command and moves every file
	// through the backend's Exec (the backend must be an Executor).
	TransportExec Transport = "exec"
)

// Cluster is what a backend knows of a cluster.
type Cluster struct {
	ID string `json:"id"`
	// UID is random per creation.
	UID   string `json:"uid"`
	Nodes []Node `json:"nodes"`
	// Record is opaque to the core; it is stored and handed back in
	// ClusterRef, so a backend that is no Lister can find the cluster again.
	Record []byte `json:"record,omitempty"`
	// Details are free-form facts shown by e2e inspect.
	Details map[string]string `json:"details,omitempty"`
	// CreatedAt is when the machines were made.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Transport is how the core reaches the nodes; empty means SSH.
	Transport Transport `json:"transport,omitempty"`
	// ExpiresAt is when the cluster's lifespan ends, for backends whose
	// clusters remove themselves (an EC2 instance that shuts down and
	// terminates); zero when it has none. `e2e list` shows it and
	// `e2e destroy --expired` destroys the clusters whose time has passed.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Reporter sends progress and log events of a long call to the core.
type Reporter interface {
	// Progress reports a step; total 0 means unknown.
	Progress(step, message string, current, total int64)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Backend is what every plugin implements: who it is, making a cluster and
// finding it again. Every other call is an optional interface (Destroyer,
// Lister, StartStopper, Executor, Cleaner, Validator, BaseConfiger,
// NodeLogger, Doctor) that the SDK detects with a type assertion:
// implementing it is declaring it.
type Backend interface {
	Info() Info
	// Create makes the machines. When ctx is cancelled the backend removes
	// what it made (unless req.Retain), using a context that is not
	// cancelled (see CleanupContext), and returns.
	Create(ctx context.Context, req CreateRequest, r Reporter) (*Cluster, error)
	// Get returns ErrNotFound (wrapped or not) when the cluster is unknown.
	Get(ctx context.Context, ref ClusterRef) (*Cluster, error)
}

// Destroyer is implemented by backends that made their machines and can
// remove them. Without it e2e destroy is refused (the user is told to e2e
// forget the cluster), and the core does not clean up after a failed
// Create.
type Destroyer interface {
	// Destroy is idempotent: destroying what does not exist succeeds.
	Destroy(ctx context.Context, ref ClusterRef, r Reporter) error
}

// Lister is implemented by backends that find their clusters themselves
// (labels, tags). The core then refuses to create an id the backend
// already has, shows clusters it has no record of in e2e list, and can
// destroy a cluster by id alone. Without it the core keeps Cluster.Record
// and hands it back in ClusterRef, and never lists.
type Lister interface {
	// List returns the clusters visible with the given options; an empty
	// list (not an error) when there are none.
	List(ctx context.Context, opts Options) ([]*Cluster, error)
}

// Validator is implemented by backends with checks beyond the schema (for
// example options that depend on each other).
type Validator interface {
	Validate(ctx context.Context, opts Options) []Diagnostic
}

// BaseConfig is a backend's contribution to the DC/OS installer config.
type BaseConfig struct {
	ConfigYAML     string
	IPDetectScript string
}

// BaseConfiger is implemented by backends that can host DC/OS.
type BaseConfiger interface {
	BaseConfig(ctx context.Context, ref ClusterRef) (BaseConfig, error)
}

// ExecRequest is a command to run on a node through the backend's transport.
type ExecRequest struct {
	// Node is a Node.Name the backend returned.
	Node string
	// Argv is the command; the core always sends /bin/sh -c LINE, LINE
	// being the command line it would send over SSH.
	Argv []string
	// Env holds variables to set for the command.
	Env map[string]string
	// User is the node's login user to run as.
	User string
	// TTY asks for a terminal.
	TTY bool
	// Stdin may deliver nothing; Stdout and Stderr receive the output.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Executor is implemented by backends with a native exec transport, used
// for clusters whose Transport is TransportExec.
type Executor interface {
	// Exec returns the command's exit code (128+N for signal N).
	Exec(ctx context.Context, ref ClusterRef, req ExecRequest) (int, error)
}

// Cleaner is implemented by backends that can find their leftovers
// (e2e clean).
type Cleaner interface {
	// Clean removes (or with dryRun only reports, through r.Infof, one line
	// per resource) what the backend made that belongs to none of the keep
	// clusters: the ones the core has records of.
	Clean(ctx context.Context, keep []ClusterRef, dryRun bool, r Reporter) error
}

// StartStopper is implemented by backends that can stop a cluster's
// machines and start them again, keeping their disks and identity (docker
// stop and docker start, stopping and starting instances). Implementing it
// sets start_stop in `e2e plugin info` and enables `e2e stop` and
// `e2e start`; Get then reports each node's State. Both return ErrNotFound
// (wrapped or not) when the cluster does not exist.
type StartStopper interface {
	// Start starts every node that is not running and returns once each
	// has booted; the core then logs in to every node (when NodesRunSSHD),
	// retrying while sshd starts. Starting a running cluster succeeds.
	Start(ctx context.Context, ref ClusterRef, r Reporter) error
	// Stop stops every node. Afterwards Get reports each as NodeStopped.
	// Stopping a stopped cluster succeeds.
	Stop(ctx context.Context, ref ClusterRef, r Reporter) error
}

// ErrNotFound is returned (possibly wrapped) by Get, Start and Stop for an
// unknown cluster.
var ErrNotFound = errors.New("cluster not found")

// CleanupTimeout bounds the cleanup a backend does after cancellation,
// counted from when the call starts it (CleanupContext). The core waits
// longer for a cancelled call's cleanup (this plus a margin), so that it
// never stops a plugin that is still within its budget.
const CleanupTimeout = 60 * time.Second

// StopTimeout bounds how long a plugin that must stop (the core shut it
// down, or died) waits for its running calls before the process exits:
// CleanupTimeout, plus time for a call to notice the cancellation and
// start its cleanup.
const StopTimeout = CleanupTimeout + 15*time.Second

// CleanupContext returns a context for removing what a cancelled call made:
// it keeps ctx's values but not its cancellation, and ends after
// CleanupTimeout.
func CleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
}

// Package cluster is e2e's public Go API for throw-away clusters:
//
//   - machines: a Manager creates, finds, lists, stops, starts and destroys
//     clusters through backend plugins;
//   - commands on their nodes: Node.Run, Node.Output, Cluster.RunOn;
//   - files: Node.Upload, Cluster.UploadTo, Node.Download;
//   - installers, in packages of their own built on this one:
//     cluster/script (your script on every node, and waiting for a command)
//     and cluster/dcos (DC/OS's advanced installer). Node.DialContext,
//     Cluster.InstallDir, InstallerConfig, SetInstalled and Report are what
//     they use besides commands and files.
//
// The e2e CLI is built on these packages and nothing else.
//
//	m, err := cluster.New(cluster.Options{})
//	if err != nil { ... }
//	defer m.Close()
//	c, err := m.Create(ctx, cluster.Spec{Backend: "docker", Agents: 2}) // and one master, one public agent
//	if err != nil { ... }
//	defer c.Destroy(context.WithoutCancel(ctx))
package cluster

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

// Role is the part a node plays in a cluster: the SDK's Role, so that
// the core and the backends speak of roles in one vocabulary.
type Role = sdk.Role

// Roles. They become DC/OS's master, slave and slave_public only when DC/OS
// is installed.
const (
	RoleMaster      = sdk.RoleMaster
	RoleAgent       = sdk.RoleAgent
	RolePublicAgent = sdk.RolePublicAgent
)

// Roles returns every role in node order (the SDK's Roles).
func Roles() []Role { return sdk.Roles() }

// SSHEndpoint is where the core dials a node's sshd: the SDK's
// SSHEndpoint (Port is 0 for a node that does not run).
type SSHEndpoint = sdk.SSHEndpoint

// NodeState is whether a node is up, as its backend sees it: the SDK's
// NodeState. Nodes a Manager returns carry one of the three states (a backend's
// empty state, from a plugin built before states existed, is NodeRunning).
type NodeState = sdk.NodeState

// Node states, as the SDK names them.
const (
	// NodeRunning: the node runs and is reached at its SSH endpoint.
	NodeRunning = sdk.NodeRunning
	// NodeStopped: the machine exists but does not run (a stopped
	// container); `e2e start` (Manager.Start) brings it back.
	NodeStopped = sdk.NodeStopped
	// NodeMissing: the machine is gone (a container removed by hand) while
	// the cluster is still recorded.
	NodeMissing = sdk.NodeMissing
)

// Node is one machine of a cluster.
type Node struct {
	Role           Role        `json:"role"`
	Index          int         `json:"index"`
	Name           string      `json:"name"`
	Hostname       string      `json:"hostname,omitempty"`
	PrivateAddress string      `json:"private_address"`
	PublicAddress  string      `json:"public_address,omitempty"`
	SSH            SSHEndpoint `json:"ssh"`
	// State is running, stopped or missing, as the backend reported it
	// when the Cluster was returned (Manager.Get). Commands on a node that
	// is not running fail at once (see NotRunningError).
	State NodeState `json:"state"`
	// HostKeyAlias is the name the node's host keys are pinned under in
	// the cluster's known_hosts, e2e-<cluster id>-<node> (as OpenSSH's
	// HostKeyAlias), when the backend vouched for its keys; empty when they
	// are pinned under the SSH address.
	HostKeyAlias string `json:"host_key_alias,omitempty"`

	cluster *Cluster
}

// Running reports whether the node runs. An empty state (a Node decoded
// from the JSON of an e2e from before node states) counts as running.
func (n Node) Running() bool { return n.State.Running() }

// ID is the node's id in its cluster, its role and index, such as
// master_0 or public_agent_1: what the CLI's --node takes and the NODE
// column of e2e inspect shows. (Name is what the backend calls the
// machine.)
func (n Node) ID() string { return nodeID(n.Role, n.Index) }

func nodeID(role Role, index int) string { return string(role) + "_" + strconv.Itoa(index) }

// Cluster is a cluster e2e created (or was given).
type Cluster struct {
	ID            string            `json:"id"`
	UID           string            `json:"uid"`
	Backend       string            `json:"backend"`
	PluginVersion string            `json:"plugin_version"`
	CreatedAt     time.Time         `json:"created_at"`
	Nodes         []Node            `json:"nodes"`
	Details       map[string]string `json:"details,omitempty"`
	// Transport is how e2e reaches the nodes: SSH (empty, or "ssh"), or
	// "exec" through the backend's plugin (the docker backend's
	// -o transport=exec).
	Transport sdk.Transport `json:"transport,omitempty"`
	// StateDir holds the cluster's private key and known_hosts.
	StateDir   string `json:"state_dir"`
	SSHKeyPath string `json:"ssh_key_path,omitempty"`
	// Installed names what an installer put on the nodes (SetInstalled;
	// "dcos" for cluster/dcos), if anything.
	Installed string `json:"installed,omitempty"`
	// SSHProxyCommand carries SSH to the nodes, when the cluster was
	// created with one (Spec.SSHProxyCommand).
	SSHProxyCommand string `json:"ssh_proxy_command,omitempty"`
	// ExpiresAt is when the cluster's lifespan ends, as its backend
	// reports it (zero: none); see Client.DestroyExpired.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Status is "running", "stopped", or "degraded (N of M nodes not
	// running)" (see Summary.Status).
	Status string `json:"status"`

	manager *Manager
	// startStop says the backend can start and stop the cluster, for the
	// advice given when a node is not running.
	startStop bool
	access    sshAccess
	conns     *conns
}

// NodesOf returns the nodes of a role, in index order.
func (c *Cluster) NodesOf(role Role) []Node {
	var out []Node
	for _, n := range c.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// Masters returns the master nodes.
func (c *Cluster) Masters() []Node { return c.NodesOf(RoleMaster) }

// Agents returns the agent nodes.
func (c *Cluster) Agents() []Node { return c.NodesOf(RoleAgent) }

// PublicAgents returns the public agent nodes.
func (c *Cluster) PublicAgents() []Node { return c.NodesOf(RolePublicAgent) }

// Node finds a node by id (master_0), name, hostname or address.
func (c *Cluster) Node(which string) (Node, error) {
	for _, n := range c.Nodes {
		if which == n.ID() || which == n.Name || (n.Hostname != "" && which == n.Hostname) ||
			which == n.PrivateAddress || (n.PublicAddress != "" && which == n.PublicAddress) {
			return n, nil
		}
	}
	ids := make([]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		ids = append(ids, n.ID())
	}
	return Node{}, invalidf("cluster %q has no node %q (nodes: %s)", c.ID, which, strings.Join(ids, ", "))
}

// InvalidError is an error the caller caused: bad input, an unknown
// backend or cluster. The CLI exits 2 for it.
type InvalidError struct{ Err error }

// Error says what is wrong with the input and, where it can, what to do.
func (e *InvalidError) Error() string { return e.Err.Error() }

// Unwrap returns the error inside.
func (e *InvalidError) Unwrap() error { return e.Err }

func invalidf(format string, args ...any) error {
	return &InvalidError{Err: fmt.Errorf(format, args...)}
}

// IsInvalid reports whether err was caused by the caller's input.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// ErrUnknownCluster is wrapped when no cluster has the given id.
var ErrUnknownCluster = errors.New("no such cluster")

// ValidateID checks a cluster id: letters, digits, _ . - and at most 40
// characters, starting with a letter or digit (it becomes part of
// container names and hostnames).
func ValidateID(id string) error {
	if err := sdk.ValidateClusterID(id); err != nil {
		return &InvalidError{Err: err}
	}
	return nil
}

// DefaultID is the cluster id used when none is given, as in DC/OS E2E.
const DefaultID = "default"

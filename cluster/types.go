// Package cluster is e2e's public Go API: create, find, list and destroy
// throw-away clusters through backend plugins. The e2e CLI is built on it
// and nothing else.
//
//	e, err := cluster.New(cluster.Options{})
//	if err != nil { ... }
//	defer e.Close()
//	c, err := e.Create(ctx, cluster.Spec{Backend: "docker", Agents: 2}) // and one master, one public agent
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

// Role is the part a node plays in a cluster.
type Role string

// Roles. They become DC/OS's master, slave and slave_public only when DC/OS
// is installed.
const (
	Master      Role = "master"
	Agent       Role = "agent"
	PublicAgent Role = "public_agent"
)

// Roles returns every role in node order.
func Roles() []Role { return []Role{Master, Agent, PublicAgent} }

// SSHEndpoint is where the core dials a node's sshd.
type SSHEndpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	User string `json:"user"`
}

// NodeState is whether a node is up, as its backend sees it.
type NodeState string

// Node states.
const (
	// NodeRunning: the node runs and is reached at its SSH endpoint.
	NodeRunning NodeState = "running"
	// NodeStopped: the machine exists but does not run (a stopped
	// container); `e2e start` (Client.Start) brings it back.
	NodeStopped NodeState = "stopped"
	// NodeMissing: the machine is gone (a container removed by hand) while
	// the cluster is still recorded.
	NodeMissing NodeState = "missing"
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
	// when the Cluster was returned (Client.Get). Commands on a node that
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
func (n Node) Running() bool { return n.State == NodeRunning || n.State == "" }

// Ref is the node's reference, such as master_0 or public_agent_1.
func (n Node) Ref() string { return nodeRef(n.Role, n.Index) }

func nodeRef(role Role, index int) string { return string(role) + "_" + strconv.Itoa(index) }

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
	// Installed names what e2e installed on the nodes ("dcos"), if anything.
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

	client *Client
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
func (c *Cluster) Masters() []Node { return c.NodesOf(Master) }

// Agents returns the agent nodes.
func (c *Cluster) Agents() []Node { return c.NodesOf(Agent) }

// PublicAgents returns the public agent nodes.
func (c *Cluster) PublicAgents() []Node { return c.NodesOf(PublicAgent) }

// Node finds a node by reference (master_0), name, hostname or address.
func (c *Cluster) Node(ref string) (Node, error) {
	for _, n := range c.Nodes {
		if ref == n.Ref() || ref == n.Name || (n.Hostname != "" && ref == n.Hostname) ||
			ref == n.PrivateAddress || (n.PublicAddress != "" && ref == n.PublicAddress) {
			return n, nil
		}
	}
	refs := make([]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		refs = append(refs, n.Ref())
	}
	return Node{}, invalidf("cluster %q has no node %q (nodes: %s)", c.ID, ref, strings.Join(refs, ", "))
}

// InvalidError is an error the caller caused: bad input, an unknown
// backend or cluster. The CLI exits 2 for it.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
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

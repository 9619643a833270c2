package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
)

// Labels on every container, network and volume the backend makes. They
// are the backend's only record of a cluster: Get, List, Destroy and Clean
// read them, so any e2e process finds what another one made.
const (
	labelManaged   = "e2e.managed" // "true"
	labelClusterID = "e2e.cluster-id"
	labelUID       = "e2e.cluster-uid" // random per creation
	labelRole      = "e2e.role"
	labelIndex     = "e2e.index"
	labelWorkspace = "e2e.workspace" // the cluster's workspace directory
	// labelExpires is when the cluster's lifespan (option ttl) ends, RFC
	// 3339 in UTC; absent without a ttl. Get and List report it in
	// Cluster.ExpiresAt, which e2e destroy --expired reads.
	labelExpires = "e2e.expires-at"
	// On containers only.
	labelNetwork  = "e2e.network"      // name of the network the node is on
	labelSSHUser  = "e2e.ssh-user"     // user the core logs in as
	labelHostKey  = "e2e.ssh-host-key" // the node's public host key
	labelCreated  = "e2e.created-at"   // RFC 3339
	labelSecurity = "e2e.security"     // securityPrivileged or securityCaps
	// labelTransport is how the core reaches the nodes: "ssh" or "exec";
	// Get reports it in Cluster.Transport.
	labelTransport = "e2e.transport"
	// labelNodes is the number of nodes per role the cluster was made
	// with ("master=1,agent=2,public_agent=0"), so that Get reports a node
	// whose container is gone as missing.
	labelNodes = "e2e.nodes"
	// roleProbe marks the short-lived container that checks whether the
	// engine allows privileged containers.
	roleProbe = "probe"
)

// The ways a node container gets its privileges.
const (
	securityPrivileged = "privileged"
	securityCaps       = "all-capabilities-but-sys-resource"
)

// newClient connects to the engine $DOCKER_HOST (or the default socket)
// names, negotiating the API version down to the engine's.
func newClient() (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("connecting to Docker: %w", err)
	}
	return cli, nil
}

// engineError makes a failure to reach the engine say what to do.
// A request cut short by a cancellation (Ctrl-C, or a sibling's failure)
// is no connection problem and gets no hint.
func engineError(err error) error {
	if client.IsErrConnectionFailed(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (is Docker running? `e2e-backend-docker doctor` checks the host)", err)
	}
	return err
}

// containerName is a node's container name: the cluster id as it is (Docker
// names may hold '_' and '.'), roles with '-' (public-agent). The node's
// hostname is sdk.NodeHostname, a valid RFC 1123 label for every valid id.
func containerName(id string, role sdk.Role, index int) string {
	return fmt.Sprintf("e2e-%s-%s-%d", id, strings.ReplaceAll(string(role), "_", "-"), index)
}

// clusterFilter selects what belongs to cluster id, or to one creation of
// it when uid is not empty; an empty id selects everything e2e made. What
// e2e made carries the uid of its creation: a container that only
// inherited labels from the node image, or that someone labelled by hand
// without a creation uid, is not e2e's.
func clusterFilter(id, uid string) filters.Args {
	f := filters.NewArgs(filters.Arg("label", labelManaged+"=true"), filters.Arg("label", labelUID))
	if id != "" {
		f.Add("label", labelClusterID+"="+id)
	}
	if uid != "" {
		f.Add("label", labelUID+"="+uid)
	}
	return f
}

// listNodes returns the node containers (running or not) of cluster id
// (every cluster when id is empty), probe containers left out.
func listNodes(ctx context.Context, cli *client.Client, id string) ([]container.Summary, error) {
	return nodesMatching(ctx, cli, clusterFilter(id, ""))
}

// nodesMatching returns the containers filter matches, probe containers
// left out.
func nodesMatching(ctx context.Context, cli *client.Client, filter filters.Args) ([]container.Summary, error) {
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filter})
	if err != nil {
		return nil, engineError(fmt.Errorf("listing containers: %w", err))
	}
	out := cs[:0]
	for _, c := range cs {
		if c.Labels[labelRole] != roleProbe {
			out = append(out, c)
		}
	}
	return out, nil
}

// clustersOf groups node containers into clusters, one per creation (uid).
func clustersOf(cs []container.Summary) []*sdk.Cluster {
	byUID := map[string]*sdk.Cluster{}
	var out []*sdk.Cluster
	var counts map[string]map[sdk.Role]int // per uid, from labelNodes
	for _, c := range cs {
		uid := c.Labels[labelUID]
		cl, ok := byUID[uid]
		if !ok {
			cl = &sdk.Cluster{ID: c.Labels[labelClusterID], UID: uid, Details: map[string]string{
				"network":   c.Labels[labelNetwork],
				"image":     c.Image,
				"workspace": c.Labels[labelWorkspace],
			}}
			if home := c.Labels[labelStateHome]; home != "" {
				cl.Details[sdk.HomeDetail] = home
			}
			// "ssh" or "exec"; none (a container of an older plugin) is SSH.
			cl.Transport = sdk.Transport(c.Labels[labelTransport])
			if c.Labels[labelSecurity] == securityCaps {
				cl.Details["security"] = "every capability but SYS_RESOURCE (the engine refuses privileged containers)"
			} else {
				cl.Details["security"] = "privileged"
			}
			if t, err := time.Parse(time.RFC3339Nano, c.Labels[labelCreated]); err == nil {
				cl.CreatedAt = t
			} else {
				cl.CreatedAt = time.Unix(c.Created, 0).UTC()
			}
			if t, err := time.Parse(time.RFC3339Nano, c.Labels[labelExpires]); err == nil {
				cl.ExpiresAt = t
			}
			byUID[uid] = cl
			out = append(out, cl)
		}
		cl.Nodes = append(cl.Nodes, nodeOf(c))
		if counts == nil {
			counts = map[string]map[sdk.Role]int{}
		}
		if n, ok := parseNodeCounts(c.Labels[labelNodes]); ok {
			counts[uid] = n
		}
	}
	for _, cl := range out {
		cl.Nodes = append(cl.Nodes, missingNodes(cl, counts[cl.UID])...)
		sortNodes(cl.Nodes)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].CreatedAt.After(out[j].CreatedAt)
	})
	return out
}

// nodeCounts is the value of labelNodes.
func nodeCounts(p *plan) string {
	n := map[sdk.Role]int{}
	for _, np := range p.nodes {
		n[np.role]++
	}
	parts := make([]string, 0, 3)
	for _, role := range sdk.Roles() {
		parts = append(parts, fmt.Sprintf("%s=%d", role, n[role]))
	}
	return strings.Join(parts, ",")
}

// parseNodeCounts reads labelNodes; false when the label is absent (a
// container made before it existed) or unreadable.
func parseNodeCounts(v string) (map[sdk.Role]int, bool) {
	if v == "" {
		return nil, false
	}
	out := map[sdk.Role]int{}
	for part := range strings.SplitSeq(v, ",") {
		role, count, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || n < 0 || !slices.Contains(sdk.Roles(), sdk.Role(role)) {
			return nil, false
		}
		out[sdk.Role(role)] = n
	}
	return out, true
}

// missingNodes are the nodes a cluster was made with whose containers are
// gone (removed by hand): reported missing, with no SSH endpoint.
func missingNodes(cl *sdk.Cluster, counts map[sdk.Role]int) []sdk.Node {
	have := map[string]bool{}
	for _, n := range cl.Nodes {
		have[n.Name] = true
	}
	var out []sdk.Node
	for _, role := range sdk.Roles() {
		for i := range counts[role] {
			if name := containerName(cl.ID, role, i); !have[name] {
				out = append(out, sdk.Node{Role: role, Index: i, Name: name, Hostname: sdk.NodeHostname(cl.ID, role, i), State: sdk.NodeMissing})
			}
		}
	}
	return out
}

// stateOf is a node's state from its container's: running; gone or going
// (removing, dead) is missing; anything else (exited, created, paused,
// restarting) is stopped, which Start brings back.
func stateOf(c container.Summary) sdk.NodeState {
	switch c.State {
	case container.StateRunning:
		return sdk.NodeRunning
	case container.StateRemoving, container.StateDead:
		return sdk.NodeMissing
	}
	return sdk.NodeStopped
}

// nodeOf reads a node from its container's labels, state, published ports
// and network settings. A container that does not run publishes no port:
// its SSH port is 0.
func nodeOf(c container.Summary) sdk.Node {
	index, _ := strconv.Atoi(c.Labels[labelIndex])
	name := ""
	if len(c.Names) > 0 {
		name = strings.TrimPrefix(c.Names[0], "/")
	}
	n := sdk.Node{
		Role: sdk.Role(c.Labels[labelRole]), Index: index, Name: name,
		Hostname: sdk.NodeHostname(c.Labels[labelClusterID], sdk.Role(c.Labels[labelRole]), index),
		SSH:      sdk.SSHEndpoint{Host: "127.0.0.1", User: c.Labels[labelSSHUser]}, State: stateOf(c),
	}
	if n.SSH.User == "" {
		n.SSH.User = "root"
	}
	if k := c.Labels[labelHostKey]; k != "" {
		n.HostKeys = []string{k}
	}
	for _, p := range c.Ports {
		if p.PrivatePort == 22 && p.Type == "tcp" && p.PublicPort != 0 && (p.IP == "127.0.0.1" || n.SSH.Port == 0) {
			n.SSH.Port = int(p.PublicPort)
		}
	}
	if c.NetworkSettings != nil {
		if ep, ok := c.NetworkSettings.Networks[c.Labels[labelNetwork]]; ok && ep != nil {
			n.PrivateAddress = ep.IPAddress
		} else {
			for _, ep := range c.NetworkSettings.Networks {
				if ep != nil && ep.IPAddress != "" {
					n.PrivateAddress = ep.IPAddress
					break
				}
			}
		}
	}
	return n
}

func sortNodes(nodes []sdk.Node) {
	slices.SortStableFunc(nodes, func(a, b sdk.Node) int {
		return cmp.Or(sdk.CompareRoles(a.Role, b.Role), cmp.Compare(a.Index, b.Index))
	})
}

// Get finds a cluster by its containers' labels. When containers of
// several creations carry the id (a leftover beside the live cluster), the
// one with ref.UID wins, else the newest.
func (backend) Get(ctx context.Context, ref sdk.ClusterRef) (*sdk.Cluster, error) {
	cli, err := newClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	return getCluster(ctx, cli, ref)
}

func getCluster(ctx context.Context, cli *client.Client, ref sdk.ClusterRef) (*sdk.Cluster, error) {
	cs, err := listNodes(ctx, cli, ref.ClusterID)
	if err != nil {
		return nil, err
	}
	found := clustersOf(cs)
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: no containers labelled %s=%s", sdk.ErrNotFound, labelClusterID, ref.ClusterID)
	}
	if ref.UID != "" {
		for _, c := range found {
			if c.UID == ref.UID {
				return c, nil
			}
		}
		return nil, fmt.Errorf("%w: the containers of cluster %q are of another creation (uid %s, not %s)",
			sdk.ErrNotFound, ref.ClusterID, found[0].UID, ref.UID)
	}
	return found[0], nil
}

// List returns every cluster whose containers exist on the engine; the
// options do not matter, as labels say everything.
func (backend) List(ctx context.Context, _ sdk.Options) ([]*sdk.Cluster, error) {
	cli, err := newClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	cs, err := listNodes(ctx, cli, "")
	if err != nil {
		return nil, err
	}
	return clustersOf(cs), nil
}

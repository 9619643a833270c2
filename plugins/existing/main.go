// Command e2e-backend-existing makes clusters of machines that already
// exist, as DC/OS E2E's Cluster.from_nodes did: it records their addresses
// and never creates or destroys them. The core logs in to every node before
// it records the cluster (Info.NodesRunSSHD).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

// Set with -ldflags from plugins/existing/VERSION.
var (
	version = "0.0.0-dev"
	commit  = ""
)

type backend struct{}

// hostOptions maps each role to the option that lists its hosts.
var hostOptions = map[sdk.Role]string{
	sdk.RoleMaster: "masters", sdk.RoleAgent: "agents", sdk.RolePublicAgent: "public_agents",
}

func (backend) Info() sdk.Info {
	return sdk.Info{
		Name: "existing", Version: version, Commit: commit,
		Summary: "machines that already exist, reached over SSH; e2e never creates or destroys them",
		// The nodes are machines with sshd; the backend implements neither
		// Destroy (it did not make them) nor List (the core's records are
		// the only list of these clusters).
		NodesRunSSHD: true,
		Options: sdk.Schema{
			sdk.ListOption("masters", "master hosts, HOST[:PORT] (repeat -o masters=... for more)"),
			sdk.ListOption("agents", "agent hosts, HOST[:PORT]"),
			sdk.ListOption("public_agents", "public agent hosts, HOST[:PORT]"),
			sdk.StringOption("ssh_user", "user to log in as when --ssh-user is not given").WithDefault("root"),
		},
	}
}

// parseHost splits HOST[:PORT]; IPv6 addresses need brackets with a port.
func parseHost(s string) (string, int, error) {
	if s == "" {
		return "", 0, errors.New("empty host")
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		// No port: the whole string is the host (an IPv6 address included).
		if ip := net.ParseIP(s); ip != nil || !containsColon(s) {
			return s, 22, nil
		}
		return "", 0, fmt.Errorf("%q is not HOST[:PORT]", s)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, portStr)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q has no host", s)
	}
	return host, port, nil
}

func containsColon(s string) bool {
	for _, r := range s {
		if r == ':' {
			return true
		}
	}
	return false
}

func (backend) Validate(_ context.Context, opts sdk.Options) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	total := 0
	seen := map[string]string{}
	for _, role := range sdk.Roles() {
		name := hostOptions[role]
		for _, h := range opts.List(name) {
			host, port, err := parseHost(h)
			if err != nil {
				diags = append(diags, sdk.Errorf(name, "option %q: %v", name, err))
				continue
			}
			key := net.JoinHostPort(host, strconv.Itoa(port))
			if other, dup := seen[key]; dup {
				diags = append(diags, sdk.Errorf(name, "option %q: %s is also listed in %q", name, key, other))
			}
			seen[key] = name
			total++
		}
	}
	if total == 0 && len(diags) == 0 {
		diags = append(diags, sdk.Errorf("masters", "no hosts given: list them with -o masters=HOST -o agents=HOST -o public_agents=HOST"))
	}
	return diags
}

func (b backend) Create(ctx context.Context, req sdk.CreateRequest, r sdk.Reporter) (*sdk.Cluster, error) {
	var diags []sdk.Diagnostic
	for _, role := range sdk.Roles() {
		name := hostOptions[role]
		hosts := req.Options.List(name)
		if req.CountGiven(role) && req.Count(role) != len(hosts) {
			diags = append(diags, sdk.Errorf(name, "%d %s given with -o %s but the %s count is %d: the counts come from the host lists, leave them out",
				len(hosts), plural(len(hosts), "host"), name, role, req.Count(role)))
		}
	}
	if len(diags) > 0 {
		return nil, &sdk.DiagnosticsError{Diagnostics: diags}
	}
	user := req.SSHUser
	if user == "" {
		user = req.Options.String("ssh_user")
	}
	uid := make([]byte, 8)
	if _, err := rand.Read(uid); err != nil {
		return nil, err
	}
	c := &sdk.Cluster{ID: req.ClusterID, UID: hex.EncodeToString(uid), CreatedAt: time.Now().UTC(),
		Details: map[string]string{"machines": "existing (e2e did not create them)"}}
	for _, role := range sdk.Roles() {
		for i, h := range req.Options.List(hostOptions[role]) {
			host, port, err := parseHost(h)
			if err != nil {
				return nil, err
			}
			c.Nodes = append(c.Nodes, sdk.Node{Role: role, Index: i, Name: h, PrivateAddress: host,
				SSH: sdk.SSHEndpoint{Host: host, Port: port, User: user}})
		}
	}
	// The core checks SSH on every node before it records the cluster.
	r.Infof("found %d %s; checking SSH", len(c.Nodes), plural(len(c.Nodes), "node"))
	record, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	c.Record = record
	return c, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// Get returns the cluster from the record the core keeps: this backend has
// no world of its own to look in.
func (backend) Get(_ context.Context, ref sdk.ClusterRef) (*sdk.Cluster, error) {
	if len(ref.Record) == 0 {
		return nil, fmt.Errorf("%w: no record of cluster %q was passed", sdk.ErrNotFound, ref.ClusterID)
	}
	c, err := decodeRecord(ref.Record)
	if err != nil {
		return nil, fmt.Errorf("the record of cluster %q is corrupt: %w", ref.ClusterID, err)
	}
	if c.ID != ref.ClusterID {
		return nil, fmt.Errorf("%w: the record is of cluster %q", sdk.ErrNotFound, c.ID)
	}
	c.Record = ref.Record
	return &c, nil
}

func main() { sdk.Serve(backend{}) }

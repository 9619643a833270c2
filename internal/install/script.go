package install

import (
	"context"
	"path"
	"strings"

	"github.com/e2e-tool/e2e/internal/shell"
	"github.com/e2e-tool/e2e/sdk"
)

// Script runs a user's script on every node: masters first (in parallel),
// then all other nodes in parallel. The script gets the node's role and the
// cluster's topology in its environment.
type Script struct {
	ClusterID string
	// Path of the script on this machine; Args are passed to it.
	Path     string
	Args     []string
	StateDir string
	Events   Events
}

// remoteScriptDir is where scripts are copied on the nodes.
const remoteScriptDir = "/opt/e2e-install"

// Env returns the variables the script sees on node n.
func (s Script) Env(nodes []Target, n Target) map[string]string {
	return map[string]string{
		"E2E_ROLE":             string(n.Role()),
		"E2E_NODE":             n.ID(),
		"E2E_NODE_IP":          n.Address(),
		"E2E_MASTER_IPS":       strings.Join(addresses(nodes, sdk.RoleMaster), " "),
		"E2E_AGENT_IPS":        strings.Join(addresses(nodes, sdk.RoleAgent), " "),
		"E2E_PUBLIC_AGENT_IPS": strings.Join(addresses(nodes, sdk.RolePublicAgent), " "),
		"E2E_CLUSTER_ID":       s.ClusterID,
	}
}

// Install copies the script to every node and runs it there as root.
func (s Script) Install(ctx context.Context, nodes []Target) error {
	remote := path.Join(remoteScriptDir, path.Base(s.Path))
	line := "chmod 0755 " + shell.Quote(remote) + " && " + shell.Quote(append([]string{remote}, s.Args...)...)
	event := func(step, node, msg string) {
		if s.Events != nil {
			s.Events(step, node, msg)
		}
	}
	runOn := func(ctx context.Context, n Target) error {
		event("install script", n.ID(), "")
		if err := runLogged(ctx, n, s.StateDir, "prepare "+remoteScriptDir, "mkdir -p "+remoteScriptDir, nil); err != nil {
			return err
		}
		if err := n.Upload(ctx, s.Path, remote); err != nil {
			return &StepError{Node: n.ID(), Step: "copy the script", Err: err}
		}
		return runLogged(ctx, n, s.StateDir, path.Base(s.Path), line, s.Env(nodes, n))
	}
	if err := parallel(ctx, byRole(nodes, sdk.RoleMaster), runOn); err != nil {
		return err
	}
	return parallel(ctx, byRole(nodes, sdk.RoleAgent, sdk.RolePublicAgent), runOn)
}

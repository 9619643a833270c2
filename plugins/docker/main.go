// Command e2e-backend-docker is e2e's Docker backend: each node is a
// container with systemd and sshd on this machine's Docker engine.
//
// This build declares the backend's options; creating containers arrives
// with the Docker backend issue, and until then Create says so clearly.
package main

import (
	"context"
	"errors"

	"github.com/e2e-tool/e2e/sdk"
)

// Set with -ldflags from plugins/docker/VERSION.
var (
	version = "0.0.0-dev"
	commit  = ""
)

type backend struct{}

func (backend) Info() sdk.Info {
	return sdk.Info{
		Name: "docker", Version: version, Commit: commit,
		Summary: "nodes are containers (systemd, sshd) on this machine's Docker engine",
		Capabilities: sdk.Capabilities{Destroy: true, TracksClusters: true,
			InstallMethods: []sdk.InstallMethod{sdk.InstallFromPath}},
		Options: sdk.Schema{
			sdk.StringOption("workspace_dir", "directory for large temporary files (a directory per cluster, removed on destroy)"),
			sdk.MountsOption("master_mounts", "mounts on masters, docker volume syntax SRC:DST[:ro|rw]"),
			sdk.MountsOption("agent_mounts", "mounts on agents, docker volume syntax SRC:DST[:ro|rw]"),
			sdk.MountsOption("public_agent_mounts", "mounts on public agents, docker volume syntax SRC:DST[:ro|rw]"),
			sdk.StringOption("image", "node image (default: the locally built Debian node image)"),
			sdk.StringOption("network", "existing Docker network to use (default: a per-cluster network)"),
			sdk.MapOption("labels", "extra container labels KEY=VALUE"),
			sdk.StringOption("one_master_host_port_map", "HOST:CONTAINER port published on master_0"),
			sdk.IntOption("memory", "memory limit per node in MiB (0: none)").WithDefault(0),
			sdk.StringOption("transport", "how the core reaches nodes: ssh or exec").WithDefault("ssh"),
		},
	}
}

func (backend) Validate(_ context.Context, opts sdk.Options) []sdk.Diagnostic {
	switch t := opts.String("transport"); t {
	case "ssh", "exec":
		return nil
	default:
		return []sdk.Diagnostic{sdk.Errorf("transport", "option \"transport\": %q is neither ssh nor exec", t)}
	}
}

var errNotYet = errors.New("the docker backend cannot create clusters yet in this build of e2e-backend-docker (its container support lands with the Docker backend issue)")

func (backend) Create(context.Context, sdk.CreateRequest, sdk.Reporter) (*sdk.Cluster, error) {
	return nil, errNotYet
}

func (backend) Get(context.Context, sdk.ClusterRef) (*sdk.Cluster, error) {
	return nil, sdk.ErrNotFound
}

func (backend) List(context.Context, sdk.Options) ([]*sdk.Cluster, error) { return nil, nil }

// Destroy has nothing to remove: this build never creates anything.
func (backend) Destroy(context.Context, sdk.ClusterRef, sdk.Reporter) error { return nil }

func main() { sdk.Serve(backend{}) }

// Command e2e-backend-docker is e2e's Docker backend: each node is a
// container that behaves like a machine (systemd as PID 1, sshd, its own
// hostname and address) on this machine's Docker engine.
//
// The files follow kind's providers: provider.go finds clusters from
// container labels; provision.go makes a cluster from plan.go's plan, with
// node.go making each node container and boot.go waiting for it to boot;
// network.go makes the cluster network; image.go is the node image's recipe,
// imagebuild.go builds it and imagecmd.go holds the build-image and doctor
// commands; clean.go removes what was made.
package main

import (
	"maps"
	"slices"

	"github.com/e2e-tool/e2e/sdk"
)

// Set with -ldflags from plugins/docker/VERSION.
var (
	version = "0.0.0-dev"
	commit  = ""
)

// backend is stateless: every call opens its own Docker client and finds
// what exists from labels, so a cluster made by one e2e process is found
// by another.
type backend struct{}

// Option names.
const (
	optWorkspaceDir      = "workspace_dir"
	optMasterMounts      = "master_mounts"
	optAgentMounts       = "agent_mounts"
	optPublicAgentMounts = "public_agent_mounts"
	optImage             = "image"
	optNetwork           = "network"
	optLabels            = "labels"
	optMasterLabels      = "master_labels"
	optAgentLabels       = "agent_labels"
	optPublicAgentLabels = "public_agent_labels"
	optPortMap           = "one_master_host_port_map"
	optMemory            = "memory"
	optTransport         = "transport"
	optTTL               = "ttl"
)

// mountOptions and labelOptions map each role to its option.
var (
	mountOptions = map[sdk.Role]string{
		sdk.RoleMaster: optMasterMounts, sdk.RoleAgent: optAgentMounts, sdk.RolePublicAgent: optPublicAgentMounts,
	}
	labelOptions = map[sdk.Role]string{
		sdk.RoleMaster: optMasterLabels, sdk.RoleAgent: optAgentLabels, sdk.RolePublicAgent: optPublicAgentLabels,
	}
)

func (backend) Info() sdk.Info {
	return sdk.Info{
		Name: "docker", Version: version, Commit: commit,
		Summary: "nodes are containers (systemd, sshd) on this machine's Docker engine",
		// Calls: Destroyer, Lister, Executor, Cleaner, StartStopper,
		// Validator, BaseConfiger (implemented, so declared).
		NodesRunSSHD:   true,
		InstallMethods: []sdk.InstallMethod{sdk.InstallFromPath, sdk.InstallFromURL},
		Options: sdk.Schema{
			sdk.StringOption(optWorkspaceDir, "directory for large temporary files: a directory e2e-ID-UID per cluster inside it, removed on destroy (default: the system's temporary directory)"),
			sdk.MountsOption(optMasterMounts, "bind mounts on masters, docker volume syntax SRC:DST[:ro|rw] (repeat -o for more)"),
			sdk.MountsOption(optAgentMounts, "bind mounts on agents, SRC:DST[:ro|rw]"),
			sdk.MountsOption(optPublicAgentMounts, "bind mounts on public agents, SRC:DST[:ro|rw]"),
			sdk.StringOption(optImage, "node image with systemd and sshd (default: the Debian node image, built on first use; see `e2e-backend-docker build-image`)"),
			sdk.StringOption(optNetwork, "existing Docker network to attach the nodes to (default: a network e2e-ID made for the cluster and removed with it)"),
			sdk.MapOption(optLabels, "extra labels KEY=VALUE on every node container"),
			sdk.MapOption(optMasterLabels, "extra labels KEY=VALUE on master containers"),
			sdk.MapOption(optAgentLabels, "extra labels KEY=VALUE on agent containers"),
			sdk.MapOption(optPublicAgentLabels, "extra labels KEY=VALUE on public agent containers"),
			sdk.StringOption(optPortMap, "ports of master_0 published on the host, [IP:]HOST:CONTAINER[/tcp|/udp], comma-separated (default IP 127.0.0.1)"),
			sdk.MapOption(optHostPortMap, "ports of any node or role published on the host, NODE=MAP or ROLE=MAP (master_0=8080:80, agent=9000:9000 for a role of one node), MAP as one_master_host_port_map"),
			sdk.IntOption(optMemory, "memory limit per node in MiB (0: no limit)").WithDefault(0),
			sdk.StringOption(optTransport, "how the core reaches nodes: ssh, or exec (docker exec through the plugin)").WithDefault("ssh"),
			sdk.DurationOption(optTTL, "lifespan of the cluster, such as 2h: its expiry is recorded in its labels, e2e list shows it, and e2e destroy --expired removes the cluster once it has passed (default: none)"),
		},
	}
}

func main() {
	cmds := imageCommands()
	opts := make([]sdk.ServeOption, 0, len(cmds))
	for _, name := range slices.Sorted(maps.Keys(cmds)) {
		opts = append(opts, sdk.WithCommand(name, cmds[name]))
	}
	sdk.Serve(backend{}, opts...)
}

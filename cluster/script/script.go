// Package script installs anything with your own script and waits for it
// with your own command: Install runs a script on every node of a cluster
// (masters first) with the node's role and the cluster's topology in E2E_*
// variables; Wait polls a shell command until it succeeds on every node.
// They are the `e2e install --script` and `e2e wait --command` of the CLI.
package script

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/cluster/internal/installer"
	"github.com/e2e-tool/e2e/internal/install"
)

// Install copies the script at path to every node and runs it there as
// root with args: on the masters first (in parallel), then on every other
// node (in parallel). It sees E2E_ROLE, E2E_NODE (the node's id),
// E2E_NODE_IP, E2E_MASTER_IPS, E2E_AGENT_IPS, E2E_PUBLIC_AGENT_IPS
// (space-separated private addresses) and E2E_CLUSTER_ID. Each node's
// output goes to a log in the cluster's InstallDir; a failure names the
// node and carries the last lines of its output. A path that is not a file
// is a *cluster.InvalidError; a node that does not run fails it before
// anything runs (see cluster.RequireRunning).
func Install(ctx context.Context, c *cluster.Cluster, path string, args []string) error {
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		return &cluster.InvalidError{Err: fmt.Errorf("--script %s: not a file", path)}
	}
	if err := cluster.RequireRunning(c.Nodes); err != nil {
		return err
	}
	dir, err := c.InstallDir()
	if err != nil {
		return err
	}
	s := install.Script{ClusterID: c.ID, Path: path, Args: args, StateDir: dir, Events: installer.Events(c)}
	if err := s.Install(ctx, installer.Targets(c.Nodes)); err != nil {
		return fmt.Errorf("running %s on cluster %q: %w", filepath.Base(path), c.ID, err)
	}
	return nil
}

// WaitOptions tune Wait.
type WaitOptions struct {
	// Timeout bounds the wait; zero means one hour.
	Timeout time.Duration
	// Roles limit the wait to the nodes of these roles; empty means every
	// node.
	Roles []cluster.Role
}

// Wait runs command (a shell command line, as root) on every node chosen
// by opts every 2 seconds until it exits 0 on each, as a readiness check
// for what a script installed. Past the timeout the error names the node
// and the last line of the command's output. A node that does not run
// fails it at once.
func Wait(ctx context.Context, c *cluster.Cluster, command string, opts WaitOptions) error {
	nodes := c.Nodes
	if len(opts.Roles) > 0 {
		nodes = nil
		for _, r := range opts.Roles {
			nodes = append(nodes, c.NodesOf(r)...)
		}
	}
	if err := cluster.RequireRunning(nodes); err != nil {
		return err
	}
	w := install.Wait{Timeout: opts.Timeout, Events: installer.Events(c)}
	return w.Command(ctx, installer.Targets(nodes), command)
}

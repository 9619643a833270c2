package dcos

import (
	"context"
	"io"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/cluster/internal/installer"
	"github.com/e2e-tool/e2e/internal/install"
)

// WaitOptions tune Wait.
type WaitOptions struct {
	// Timeout bounds the wait; zero means one hour.
	Timeout time.Duration
	// SkipHTTPChecks waits only for the node-poststart checks.
	SkipHTTPChecks bool
	// Superuser credentials log in to DC/OS Enterprise before the HTTP
	// checks, as DC/OS E2E's wait_for_dcos_ee did.
	SuperuserUsername string
	SuperuserPassword string
}

// Wait waits until DC/OS is up, as DC/OS E2E's wait_for_dcos_oss and
// wait_for_dcos_ee did: the
// check runner's node-poststart checks on every master, then the HTTP
// endpoints (the UI, Marathon, Exhibitor serving, every agent registered
// with Mesos), reached through each master's SSH connection. A cluster
// that has no DC/OS (not installed by e2e, and no /opt/mesosphere on
// master_0) is a *cluster.InvalidError at once, not a timeout.
func Wait(ctx context.Context, c *cluster.Cluster, opts WaitOptions) error {
	if err := cluster.RequireRunning(c.Nodes); err != nil {
		return err
	}
	if err := checkThere(ctx, c); err != nil {
		return err
	}
	w := install.Wait{Timeout: opts.Timeout, SkipHTTPChecks: opts.SkipHTTPChecks,
		SuperuserUsername: opts.SuperuserUsername, SuperuserPassword: opts.SuperuserPassword, Events: installer.Events(c)}
	return w.DCOS(ctx, installer.Targets(c.Nodes))
}

// checkThere refuses at once to wait for DC/OS on a cluster that has
// none, rather than polling until the timeout: e2e did not install it and
// master_0 has no /opt/mesosphere. DC/OS installed by other means (on
// machines that already exist) is found there.
func checkThere(ctx context.Context, c *cluster.Cluster) error {
	ms := c.Masters()
	if c.Installed == Installed || len(ms) == 0 {
		return nil
	}
	st, err := ms[0].Run(ctx, cluster.Command{Shell: "test -d /opt/mesosphere", Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		return err
	}
	if st.Code != 0 {
		return invalidf("cluster %q has no DC/OS to wait for (e2e did not install it, and master_0 has no /opt/mesosphere): install it with `e2e install`, or wait for something else with `e2e wait --command CMD`", c.ID)
	}
	return nil
}

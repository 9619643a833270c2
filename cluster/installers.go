package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
)

// Installers put software on a cluster's nodes: cluster/script runs your
// script on every node, cluster/dcos installs DC/OS with its advanced
// installer. They are built on this package's commands, files and
// connections (Node.Run, Node.Upload, Node.DialContext...) and on the few
// calls below, which any other installer can use the same way.

// InstallMethod is how an installer reaches the nodes: the SDK's
// InstallMethod, as a backend declares it (BackendInfo).
type InstallMethod = sdk.InstallMethod

// Install methods, as the SDK names them.
const (
	// InstallFromPath: the installer is a file on this machine that the
	// core sends to the nodes.
	InstallFromPath = sdk.InstallFromPath
	// InstallFromURL: the nodes download the installer themselves.
	InstallFromURL = sdk.InstallFromURL
)

// InstallerConfig is a backend's part of an installer's configuration for
// its machines (the SDK's BaseConfig): for DC/OS, config.yaml keys and the
// ip-detect script.
type InstallerConfig struct {
	ConfigYAML     string
	IPDetectScript string
}

// errNotManaged is the error of a Cluster or Node not returned by a Manager.
var errNotManaged = errors.New("cluster was not returned by a cluster.Manager")

// BackendInfo describes the cluster's backend as Manager.Backend does:
// among others, the install methods it offers.
func (c *Cluster) BackendInfo(ctx context.Context) (BackendInfo, error) {
	if c.manager == nil {
		return BackendInfo{}, errNotManaged
	}
	return c.manager.Backend(ctx, c.Backend)
}

// InstallerConfig asks the cluster's backend for its part of an
// installer's configuration. A backend that offers no install method
// (BackendInfo) may have none.
func (c *Cluster) InstallerConfig(ctx context.Context) (InstallerConfig, error) {
	if c.manager == nil {
		return InstallerConfig{}, errNotManaged
	}
	p, err := c.manager.open(ctx, c.Backend)
	if err != nil {
		return InstallerConfig{}, err
	}
	defer p.Kill()
	meta, err := c.manager.load(c.ID)
	if err != nil {
		return InstallerConfig{}, err
	}
	base, err := p.BaseConfig(ctx, clusterRef(meta))
	if err != nil {
		return InstallerConfig{}, fmt.Errorf("the %s backend's base config: %w", c.Backend, p.Wrap("base config", err))
	}
	return InstallerConfig{ConfigYAML: base.ConfigYAML, IPDetectScript: base.IPDetectScript}, nil
}

// InstallDir returns the directory, in the cluster's state directory, that
// keeps installation logs (one per node) and the configuration used; it is
// made (0700) if missing.
func (c *Cluster) InstallDir() (string, error) {
	dir := filepath.Join(c.StateDir, "install")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// SetInstalled records what was installed on the nodes (Installed, such as
// "dcos"), so that later calls know what to look for there.
func (c *Cluster) SetInstalled(ctx context.Context, what string) error {
	if c.manager == nil {
		return errNotManaged
	}
	c.Installed = what
	return c.manager.store.Update(ctx, c.ID, func(m *state.Metadata) error {
		m.Installed = what
		return nil
	})
}

// Report sends a progress event of work on the cluster (an installer's
// steps) to the Manager's Options.Events, with Cluster set to the
// cluster's id.
func (c *Cluster) Report(ev Event) {
	if c.manager == nil {
		return
	}
	ev.Cluster = c.ID
	c.manager.events(ev)
}

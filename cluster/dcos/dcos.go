// Package dcos installs DC/OS on a cluster with DC/OS's advanced installer
// (dcos_generate_config.sh), upgrades it, waits until it is up, reads the
// installed version and runs commands in DC/OS's test environment, as
// DC/OS E2E did. It is one installer built on the cluster package; the
// CLI's `e2e install`, `upgrade`, `wait` and `run --test-env` use it.
//
//	if err := dcos.Install(ctx, c, dcos.Options{Installer: "./dcos_generate_config.sh"}); err != nil { ... }
//	if err := dcos.Wait(ctx, c, dcos.WaitOptions{}); err != nil { ... }
package dcos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/cluster/internal/installer"
	"github.com/e2e-tool/e2e/internal/install"
)

// Installed is what Install records as the cluster's Installed.
const Installed = "dcos"

// Options describe a DC/OS installation or upgrade.
type Options struct {
	// Installer is a dcos_generate_config.sh on this machine, or
	// InstallerURL one the nodes download. Give exactly one.
	Installer    string
	InstallerURL string
	// ExtraConfig is YAML merged over the generated config.yaml (it wins).
	ExtraConfig []byte
	// GenconfDir holds extra files for genconf/ (license, certificates).
	GenconfDir string
	// IPDetect replaces the backend's ip-detect script.
	IPDetect string
	// Variant is "auto" (read from the installer, see InstallerVariant),
	// "oss" or "enterprise". Install and Upgrade work the same for both;
	// the variant says whether Wait needs superuser credentials.
	Variant string
}

// Install installs DC/OS with the advanced installer: genconf once (here,
// or on master_0 for InstallerURL), the payload to every node in parallel,
// then dcos_install.sh on the masters and on all agents. Bad options, and
// a backend that cannot install the way opts asks, are a
// *cluster.InvalidError before anything runs; so is a node that does not
// run. Logs go to the cluster's InstallDir.
func Install(ctx context.Context, c *cluster.Cluster, opts Options) error {
	if err := cluster.RequireRunning(c.Nodes); err != nil {
		return err
	}
	d, err := installation(ctx, c, opts)
	if err != nil {
		return err
	}
	// Marked before the installer runs: after a partial failure inspect
	// and upgrade still look at what is on the nodes.
	if err := c.SetInstalled(ctx, Installed); err != nil {
		return err
	}
	if len(opts.ExtraConfig) > 0 {
		if err := os.WriteFile(filepath.Join(d.StateDir, "extra-config.yaml"), opts.ExtraConfig, 0o600); err != nil {
			return err
		}
	}
	if err := d.Install(ctx, installer.Targets(c.Nodes)); err != nil {
		return fmt.Errorf("installing DC/OS on cluster %q: %w", c.ID, err)
	}
	return nil
}

// Upgrade upgrades DC/OS from the installed version with a new installer:
// masters one at a time, then agents. Without ExtraConfig the one the
// cluster was installed with is used again. A cluster without DC/OS is a
// *cluster.InvalidError.
func Upgrade(ctx context.Context, c *cluster.Cluster, opts Options) error {
	if err := cluster.RequireRunning(c.Nodes); err != nil {
		return err
	}
	if len(opts.ExtraConfig) == 0 {
		// Keep the configuration the cluster was installed with.
		if dir, err := c.InstallDir(); err == nil {
			if b, err := os.ReadFile(filepath.Join(dir, "extra-config.yaml")); err == nil {
				opts.ExtraConfig = b
			}
		}
	}
	d, err := installation(ctx, c, opts)
	if err != nil {
		return err
	}
	v, err := InstalledVersion(ctx, c)
	if err != nil {
		return err
	}
	if v.Version == "" {
		return invalidf("cluster %q has no DC/OS installed to upgrade (no /opt/mesosphere/etc/dcos-version.json on master_0)", c.ID)
	}
	if err := d.Upgrade(ctx, installer.Targets(c.Nodes), v.Version); err != nil {
		return fmt.Errorf("upgrading DC/OS on cluster %q: %w", c.ID, err)
	}
	return nil
}

// installation checks opts against the cluster's backend and returns the
// installation they describe.
func installation(ctx context.Context, c *cluster.Cluster, opts Options) (install.DCOS, error) {
	if err := checkInstallerFlags(opts); err != nil {
		return install.DCOS{}, err
	}
	info, err := c.BackendInfo(ctx)
	if err != nil {
		return install.DCOS{}, err
	}
	if err := checkInstallMethod(c.Backend, info.Capabilities.InstallMethods, opts); err != nil {
		return install.DCOS{}, invalidf("cluster %q: %w", c.ID, err)
	}
	base, err := c.InstallerConfig(ctx)
	if err != nil {
		return install.DCOS{}, err
	}
	dir, err := c.InstallDir()
	if err != nil {
		return install.DCOS{}, err
	}
	ipDetect := base.IPDetectScript
	if opts.IPDetect != "" {
		b, err := os.ReadFile(opts.IPDetect)
		if err != nil {
			return install.DCOS{}, invalidf("--ip-detect: %v", err)
		}
		ipDetect = string(b)
	}
	if ipDetect == "" {
		return install.DCOS{}, invalidf("the %s backend has no ip-detect script: give one with --ip-detect FILE", c.Backend)
	}
	if _, err := install.Config(base.ConfigYAML, nil, opts.ExtraConfig); err != nil {
		return install.DCOS{}, &cluster.InvalidError{Err: err}
	}
	return install.DCOS{InstallerPath: opts.Installer, InstallerURL: opts.InstallerURL, BaseConfig: base.ConfigYAML,
		ExtraConfig: opts.ExtraConfig, IPDetect: ipDetect, GenconfDir: opts.GenconfDir, StateDir: dir,
		Events: installer.Events(c)}, nil
}

// InstallerVariant reads a DC/OS installer's --version: its version and
// "oss" or "enterprise".
func InstallerVariant(ctx context.Context, installer string) (version, variant string, err error) {
	return install.Variant(ctx, installer)
}

// CheckExtraConfig reports, as a *cluster.InvalidError, whether extra is
// unusable as Options.ExtraConfig (not a YAML map).
func CheckExtraConfig(extra []byte) error {
	if _, err := install.Config("", nil, extra); err != nil {
		return &cluster.InvalidError{Err: err}
	}
	return nil
}

// CheckInstaller checks, before any machine is made, that a backend can
// install DC/OS the way opts asks; the error is a *cluster.InvalidError.
func CheckInstaller(ctx context.Context, m *cluster.Manager, backend string, opts Options) error {
	if err := checkInstallerFlags(opts); err != nil {
		return err
	}
	info, err := m.Backend(ctx, backend)
	if err != nil {
		return err
	}
	return checkInstallMethod(backend, info.Capabilities.InstallMethods, opts)
}

// checkInstallerFlags checks for exactly one installer, and that a local
// one is a file.
func checkInstallerFlags(opts Options) error {
	if (opts.Installer == "") == (opts.InstallerURL == "") {
		return invalidf("give exactly one of --installer PATH or --installer-url URL")
	}
	if opts.Installer != "" {
		if st, err := os.Stat(opts.Installer); err != nil || st.IsDir() {
			return invalidf("--installer %s: not a file", opts.Installer)
		}
	}
	return nil
}

// checkInstallMethod checks that the backend supports the installer's
// method (path or URL).
func checkInstallMethod(backend string, methods []cluster.InstallMethod, opts Options) error {
	if len(methods) == 0 {
		return invalidf("the %s backend cannot install DC/OS: e2e did not make its machines, and DC/OS on them is assumed to be running already", backend)
	}
	want, use := cluster.InstallFromPath, "--installer-url URL"
	if opts.InstallerURL != "" {
		want, use = cluster.InstallFromURL, "--installer PATH"
	}
	if slices.Contains(methods, want) {
		return nil
	}
	names := make([]string, 0, len(methods))
	for _, m := range methods {
		names = append(names, string(m))
	}
	return invalidf("the %s backend installs only from %s (use %s)", backend, strings.Join(names, ", "), use)
}

// invalidf is a *cluster.InvalidError: the caller's input is at fault.
func invalidf(format string, args ...any) error {
	return &cluster.InvalidError{Err: fmt.Errorf(format, args...)}
}

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/install"
	"github.com/e2e-tool/e2e/internal/shell"
	"github.com/e2e-tool/e2e/internal/state"
	"github.com/e2e-tool/e2e/sdk"
)

// installNode adapts a Node to what the install package needs.
type installNode struct{ n Node }

func (a installNode) Ref() string            { return a.n.Ref() }
func (a installNode) NodeRole() install.Role { return install.Role(a.n.Role) }
func (a installNode) Address() string        { return a.n.PrivateAddress }
func (a installNode) Exec(ctx context.Context, shell string, env map[string]string, stdout, stderr io.Writer) (int, error) {
	st, err := a.n.Run(ctx, Command{Shell: shell, Env: env, Sudo: true, Stdout: stdout, Stderr: stderr})
	return st.Code, err
}
func (a installNode) Upload(ctx context.Context, src, dst string) error {
	return a.n.Upload(ctx, src, dst, nil)
}
func (a installNode) Download(ctx context.Context, src, dst string) error {
	return a.n.Download(ctx, src, dst, nil)
}
func (a installNode) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	cl, err := a.n.cluster.connect(ctx, a.n)
	if err != nil {
		return nil, err
	}
	return cl.DialContext(ctx, network, addr)
}

func (c *Cluster) installNodes(nodes []Node) []install.Node {
	out := make([]install.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, installNode{n})
	}
	return out
}

// logDir is where installation logs and the config used are kept.
func (c *Cluster) logDir() (string, error) {
	dir := filepath.Join(c.StateDir, "install")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

func (c *Cluster) events() install.Events {
	return func(step, node, msg string) {
		if node != "" {
			step = step + " " + node
		}
		c.client.events(Event{Cluster: c.ID, Step: step, Message: msg})
	}
}

// DCOSOptions describe a DC/OS installation or upgrade.
type DCOSOptions struct {
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
	// Variant is "auto" (read from the installer), "oss" or "enterprise".
	Variant string
}

// backendCanInstall checks the backend's install methods.
func (c *Cluster) backendCanInstall(ctx context.Context, opts DCOSOptions) (sdk.BaseConfig, error) {
	if err := checkInstallerFlags(opts); err != nil {
		return sdk.BaseConfig{}, err
	}
	p, err := c.client.open(ctx, c.Backend)
	if err != nil {
		return sdk.BaseConfig{}, err
	}
	defer p.Kill()
	if err := checkInstallMethod(c.Backend, p.Desc.InstallMethods, opts); err != nil {
		return sdk.BaseConfig{}, invalidf("cluster %q: %w", c.ID, err)
	}
	m, err := c.client.load(c.ID)
	if err != nil {
		return sdk.BaseConfig{}, err
	}
	base, err := p.BaseConfig(ctx, ref(m))
	if err != nil {
		return sdk.BaseConfig{}, fmt.Errorf("the %s backend's base config: %w", c.Backend, p.Wrap("base config", err))
	}
	return base, nil
}

func (c *Cluster) dcos(ctx context.Context, opts DCOSOptions) (install.DCOS, error) {
	base, err := c.backendCanInstall(ctx, opts)
	if err != nil {
		return install.DCOS{}, err
	}
	dir, err := c.logDir()
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
		return install.DCOS{}, &InvalidError{Err: err}
	}
	return install.DCOS{InstallerPath: opts.Installer, InstallerURL: opts.InstallerURL, BaseConfig: base.ConfigYAML,
		ExtraConfig: opts.ExtraConfig, IPDetect: ipDetect, GenconfDir: opts.GenconfDir, StateDir: dir, Events: c.events()}, nil
}

// InstallDCOS installs DC/OS with the advanced installer.
func (c *Cluster) InstallDCOS(ctx context.Context, opts DCOSOptions) error {
	if err := requireRunning(c.Nodes); err != nil {
		return err
	}
	d, err := c.dcos(ctx, opts)
	if err != nil {
		return err
	}
	// Marked before the installer runs: after a partial failure inspect
	// and upgrade still look at what is on the nodes.
	if err := c.markInstalled(ctx, "dcos"); err != nil {
		return err
	}
	if len(opts.ExtraConfig) > 0 {
		if err := os.WriteFile(filepath.Join(d.StateDir, "extra-config.yaml"), opts.ExtraConfig, 0o600); err != nil {
			return err
		}
	}
	if err := d.Install(ctx, c.installNodes(c.Nodes)); err != nil {
		return fmt.Errorf("installing DC/OS on cluster %q: %w", c.ID, err)
	}
	return nil
}

// markInstalled records what was installed, so inspect knows to ask the
// nodes for a version.
func (c *Cluster) markInstalled(ctx context.Context, what string) error {
	c.Installed = what
	return c.client.store.Update(ctx, c.ID, func(m *state.Metadata) error {
		m.Installed = what
		return nil
	})
}

// UpgradeDCOS upgrades DC/OS from the installed version with a new
// installer: masters one at a time, then agents.
func (c *Cluster) UpgradeDCOS(ctx context.Context, opts DCOSOptions) error {
	if err := requireRunning(c.Nodes); err != nil {
		return err
	}
	if len(opts.ExtraConfig) == 0 {
		// Keep the configuration the cluster was installed with.
		if dir, err := c.logDir(); err == nil {
			if b, err := os.ReadFile(filepath.Join(dir, "extra-config.yaml")); err == nil {
				opts.ExtraConfig = b
			}
		}
	}
	d, err := c.dcos(ctx, opts)
	if err != nil {
		return err
	}
	v, err := c.DCOSVersion(ctx)
	if err != nil {
		return err
	}
	if v.Version == "" {
		return invalidf("cluster %q has no DC/OS installed to upgrade (no /opt/mesosphere/etc/dcos-version.json on master_0)", c.ID)
	}
	if err := d.Upgrade(ctx, c.installNodes(c.Nodes), v.Version); err != nil {
		return fmt.Errorf("upgrading DC/OS on cluster %q: %w", c.ID, err)
	}
	return nil
}

// InstallScript runs a script on every node (masters first) with the
// node's role and the cluster's topology in E2E_* variables.
func (c *Cluster) InstallScript(ctx context.Context, script string, args []string) error {
	if st, err := os.Stat(script); err != nil || st.IsDir() {
		return invalidf("--script %s: not a file", script)
	}
	if err := requireRunning(c.Nodes); err != nil {
		return err
	}
	dir, err := c.logDir()
	if err != nil {
		return err
	}
	s := install.Script{ClusterID: c.ID, Path: script, Args: args, StateDir: dir, Events: c.events()}
	if err := s.Install(ctx, c.installNodes(c.Nodes)); err != nil {
		return fmt.Errorf("running %s on cluster %q: %w", filepath.Base(script), c.ID, err)
	}
	return nil
}

// WaitOptions tune Wait.
type WaitOptions struct {
	Timeout        time.Duration
	SkipHTTPChecks bool
	// Superuser credentials, for DC/OS Enterprise.
	SuperuserUsername string
	SuperuserPassword string
	// Command, when set, is polled instead of the DC/OS checks, on every
	// node of Roles (every node when empty).
	Command string
	Roles   []Role
}

// Wait waits until DC/OS is up (or Command succeeds everywhere).
func (c *Cluster) Wait(ctx context.Context, opts WaitOptions) error {
	w := install.Wait{Timeout: opts.Timeout, SkipHTTPChecks: opts.SkipHTTPChecks,
		SuperuserUsername: opts.SuperuserUsername, SuperuserPassword: opts.SuperuserPassword, Events: c.events()}
	if opts.Command != "" {
		nodes := c.Nodes
		if len(opts.Roles) > 0 {
			nodes = nil
			for _, r := range opts.Roles {
				nodes = append(nodes, c.NodesOf(r)...)
			}
		}
		if err := requireRunning(nodes); err != nil {
			return err
		}
		return w.Command(ctx, c.installNodes(nodes), opts.Command)
	}
	if err := requireRunning(c.Nodes); err != nil {
		return err
	}
	if err := c.checkDCOSThere(ctx); err != nil {
		return err
	}
	return w.DCOS(ctx, c.installNodes(c.Nodes))
}

// checkDCOSThere refuses at once to wait for DC/OS on a cluster that has
// none, rather than polling until the timeout: e2e did not install it and
// master_0 has no /opt/mesosphere. DC/OS installed by other means (on
// machines that already exist) is found there.
func (c *Cluster) checkDCOSThere(ctx context.Context) error {
	ms := c.Masters()
	if c.Installed == "dcos" || len(ms) == 0 {
		return nil
	}
	var out limitedBuffer
	st, err := ms[0].Run(ctx, Command{Shell: "test -d /opt/mesosphere", Stdout: &out, Stderr: &out})
	if err != nil {
		return err
	}
	if st.Code != 0 {
		return invalidf("cluster %q has no DC/OS to wait for (e2e did not install it, and master_0 has no /opt/mesosphere): install it with `e2e install`, or wait for something else with `e2e wait --command CMD`", c.ID)
	}
	return nil
}

// DCOSVersion is what /opt/mesosphere/etc/dcos-version.json on master_0
// says; empty when DC/OS is not installed.
type DCOSVersion struct {
	Version string `json:"version"`
	Variant string `json:"dcos-variant"`
	Commit  string `json:"dcos-image-commit,omitempty"`
}

// DCOSVersion reads the installed DC/OS version, as dcos_build_info did.
func (c *Cluster) DCOSVersion(ctx context.Context) (DCOSVersion, error) {
	ms := c.Masters()
	if len(ms) == 0 || c.Installed != "dcos" {
		return DCOSVersion{}, nil
	}
	var out, errOut limitedBuffer
	st, err := ms[0].Run(ctx, Command{Shell: "cat /opt/mesosphere/etc/dcos-version.json 2>/dev/null || true", Stdout: &out, Stderr: &errOut})
	if err != nil {
		return DCOSVersion{}, err
	}
	if st.Code != 0 || len(out.Bytes()) == 0 {
		return DCOSVersion{}, nil
	}
	var v DCOSVersion
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		return DCOSVersion{}, errors.New("master_0's /opt/mesosphere/etc/dcos-version.json is not JSON")
	}
	return v, nil
}

// TestEnv returns the shell prefix that runs a command the way DC/OS
// E2E's run_with_test_environment did: DC/OS's environment sourced, in the
// integration-test directory, with the cluster's hosts in variables.
func (c *Cluster) TestEnv() (prefix string, env map[string]string) {
	join := func(nodes []Node) string {
		addrs := make([]string, 0, len(nodes))
		for _, n := range nodes {
			addrs = append(addrs, n.PrivateAddress)
		}
		return strings.Join(addrs, ",")
	}
	env = map[string]string{
		"MASTER_HOSTS":            join(c.Masters()),
		"SLAVE_HOSTS":             join(c.Agents()),
		"PUBLIC_SLAVE_HOSTS":      join(c.PublicAgents()),
		"PUBLIC_MASTER_HOSTS":     join(c.Masters()),
		"DCOS_NUM_MASTERS":        fmt.Sprint(len(c.Masters())),
		"DCOS_NUM_AGENTS":         fmt.Sprint(len(c.Agents()) + len(c.PublicAgents())),
		"DCOS_PROVIDER":           "onprem",
		"PYTHONUNBUFFERED":        "true",
		"PYTHONDONTWRITEBYTECODE": "true",
	}
	if ms := c.Masters(); len(ms) > 0 {
		env["DCOS_DNS_ADDRESS"] = "http://" + ms[0].PrivateAddress
	}
	prefix = `. /opt/mesosphere/environment.export && ` +
		`{ . ` + testDir + `/util/test_env.export 2>/dev/null || . ` + testDir + `/test_env.export 2>/dev/null || true; } && ` +
		`cd ` + testDir + ` && `
	return prefix, env
}

// testDir is DC/OS's integration-test directory.
const testDir = "/opt/mesosphere/active/dcos-integration-test"

// WithTestEnv returns cmd changed to run in the DC/OS test environment
// (see TestEnv); cmd's own Env wins.
func (c *Cluster) WithTestEnv(cmd Command) Command {
	prefix, env := c.TestEnv()
	for k, v := range cmd.Env {
		env[k] = v
	}
	line := cmd.Shell
	if line == "" {
		line = shell.Quote(cmd.Argv...)
	}
	cmd.Argv, cmd.Shell, cmd.Env = nil, prefix+line, env
	return cmd
}

// InstallerVariant reads a DC/OS installer's --version: its version and
// "oss" or "enterprise".
func InstallerVariant(ctx context.Context, installer string) (version, variant string, err error) {
	return install.Variant(ctx, installer)
}

// CheckExtraConfig reports whether extra is usable as --extra-config.
func CheckExtraConfig(extra []byte) error {
	if _, err := install.Config("", nil, extra); err != nil {
		return &InvalidError{Err: err}
	}
	return nil
}

// CheckInstaller checks, before any machine is made, that a backend can
// install DC/OS the way opts asks.
func (e *Client) CheckInstaller(ctx context.Context, backend string, opts DCOSOptions) error {
	if err := checkInstallerFlags(opts); err != nil {
		return err
	}
	p, err := e.open(ctx, backend)
	if err != nil {
		return err
	}
	defer p.Kill()
	return checkInstallMethod(backend, p.Desc.InstallMethods, opts)
}

// checkInstallerFlags checks for exactly one installer, and that a local
// one is a file.
func checkInstallerFlags(opts DCOSOptions) error {
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
func checkInstallMethod(backend string, methods []sdk.InstallMethod, opts DCOSOptions) error {
	if len(methods) == 0 {
		return invalidf("the %s backend cannot install DC/OS: e2e did not make its machines, and DC/OS on them is assumed to be running already", backend)
	}
	want, use := sdk.InstallFromPath, "--installer-url URL"
	if opts.InstallerURL != "" {
		want, use = sdk.InstallFromURL, "--installer PATH"
	}
	names := make([]string, 0, len(methods))
	for _, m := range methods {
		if m == want {
			return nil
		}
		names = append(names, string(m))
	}
	return invalidf("the %s backend installs only from %s (use %s)", backend, strings.Join(names, ", "), use)
}

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/cluster/dcos"
	"github.com/e2e-tool/e2e/cluster/script"
)

// dcosFlags are the DC/OS installer flags of install, upgrade and create.
type dcosFlags struct {
	Installer    string `help:"DC/OS installer (dcos_generate_config.sh) on this machine; genconf runs here." type:"existingfile"`
	InstallerURL string `name:"installer-url" help:"DC/OS installer URL; master_0 downloads it and runs genconf." placeholder:"URL"`
	ExtraConfig  string `name:"extra-config" help:"YAML merged over the generated config.yaml (yours wins)." type:"existingfile"`
	GenconfDir   string `name:"genconf-dir" help:"Directory of extra genconf files (license, certificates)." type:"existingdir"`
	IPDetect     string `name:"ip-detect" help:"ip-detect script instead of the backend's." type:"existingfile"`
	Variant      string `enum:"auto,oss,enterprise" default:"auto" help:"DC/OS variant: auto reads the installer's --version."`
}

func (f dcosFlags) given() bool { return f.Installer != "" || f.InstallerURL != "" }

func (f dcosFlags) options() (dcos.Options, error) {
	opts := dcos.Options{Installer: f.Installer, InstallerURL: f.InstallerURL, GenconfDir: f.GenconfDir,
		IPDetect: f.IPDetect, Variant: f.Variant}
	if f.ExtraConfig != "" {
		b, err := os.ReadFile(f.ExtraConfig)
		if err != nil {
			return opts, invalid(fmt.Errorf("--extra-config: %w", err))
		}
		if err := dcos.CheckExtraConfig(b); err != nil {
			return opts, err
		}
		opts.ExtraConfig = b
	}
	return opts, nil
}

// superuserPasswordEnv holds the DC/OS Enterprise superuser's password.
const superuserPasswordEnv = "E2E_SUPERUSER_PASSWORD"

// waitFlags are the flags of wait (and --wait).
type waitFlags struct {
	Timeout               time.Duration `default:"1h" help:"Give up after this long."`
	SkipHTTPChecks        bool          `name:"skip-http-checks" help:"Only the node-poststart checks, no HTTP checks."`
	SuperuserUsername     string        `name:"superuser-username" help:"DC/OS Enterprise superuser to log in as for the HTTP checks; its password comes from $E2E_SUPERUSER_PASSWORD or --superuser-password-file."`
	SuperuserPasswordFile string        `name:"superuser-password-file" type:"existingfile" placeholder:"PATH" help:"File holding the superuser's password (instead of $E2E_SUPERUSER_PASSWORD)."`
	// A password in argv is seen by every user of the machine (ps,
	// /proc/PID/cmdline): the flag exists only to be refused.
	SuperuserPassword *string `name:"superuser-password" hidden:"" placeholder:"NEVER"`
}

// Validate refuses a password on the command line before anything runs.
func (w *waitFlags) Validate() error {
	if w.SuperuserPassword != nil {
		return invalid(fmt.Errorf("--superuser-password would show the password to every user of this machine: set %s or give --superuser-password-file PATH", superuserPasswordEnv))
	}
	return nil
}

// options returns the wait options, with the superuser's password read
// from --superuser-password-file or $E2E_SUPERUSER_PASSWORD.
func (w waitFlags) options() (dcos.WaitOptions, error) {
	opts := dcos.WaitOptions{Timeout: w.Timeout, SkipHTTPChecks: w.SkipHTTPChecks,
		SuperuserUsername: w.SuperuserUsername, SuperuserPassword: os.Getenv(superuserPasswordEnv)}
	if w.SuperuserPasswordFile != "" {
		b, err := os.ReadFile(w.SuperuserPasswordFile)
		if err != nil {
			return opts, invalid(fmt.Errorf("--superuser-password-file: %w", err))
		}
		opts.SuperuserPassword = strings.TrimRight(string(b), "\r\n")
	}
	return opts, nil
}

// InstallCmd installs DC/OS, or runs an install script, on a cluster.
type InstallCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	dcosFlags
	Script    string   `help:"Script to run on every node instead of DC/OS (masters first); it gets E2E_ROLE, E2E_NODE, E2E_NODE_IP, E2E_MASTER_IPS, E2E_AGENT_IPS, E2E_PUBLIC_AGENT_IPS, E2E_CLUSTER_ID." type:"existingfile"`
	ScriptArg []string `name:"script-arg" sep:"none" help:"Argument for the script (repeatable)."`
	Wait      bool     `help:"Wait for DC/OS afterwards."`
	waitFlags
	LogsOnFailure string `name:"logs-on-failure" placeholder:"DIR" help:"When the installation fails, write a logs bundle (as e2e logs) into DIR (new or empty)."`
}

func (c *InstallCmd) Run(e *env) error {
	if c.LogsOnFailure != "" {
		if err := checkLogsDir("--logs-on-failure", c.LogsOnFailure); err != nil {
			return err
		}
	}
	cl, err := c.install(e)
	if err != nil && cl != nil {
		logsOnFailure(e, cl, c.LogsOnFailure, err)
	}
	if cl != nil {
		cl.Close()
	}
	return err
}

// install installs on the cluster; it returns the cluster once it has it,
// so that a failure can be followed by its logs.
func (c *InstallCmd) install(e *env) (*cluster.Cluster, error) {
	n := 0
	for _, s := range []string{c.Installer, c.InstallerURL, c.Script} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, invalid(errors.New("give exactly one of --installer PATH, --installer-url URL or --script FILE"))
	}
	if c.Script != "" && c.Wait {
		return nil, invalid(errors.New("--wait waits for DC/OS; after --script use e2e wait --command CMD"))
	}
	if c.Script != "" {
		e.now("running %s on cluster %q", filepath.Base(c.Script), c.ClusterID)
	} else {
		e.now("installing DC/OS on cluster %q", c.ClusterID)
	}
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if c.Script != "" {
		e.now("running %s on cluster %q", filepath.Base(c.Script), cl.ID)
		if err := script.Install(e.ctx, cl, c.Script, c.ScriptArg); err != nil {
			return cl, err
		}
		e.say("ran %s on %d nodes of %s in %s", c.Script, len(cl.Nodes), cl.ID, time.Since(start).Round(time.Millisecond))
		return cl, nil
	}
	return cl, installDCOS(e, cl, c.dcosFlags, c.Wait, c.waitFlags, start)
}

func installDCOS(e *env, cl *cluster.Cluster, f dcosFlags, wait bool, w waitFlags, start time.Time) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	waitOpts, err := w.options()
	if err != nil {
		return err
	}
	e.now("installing DC/OS on cluster %q", cl.ID)
	if err := dcos.Install(e.ctx, cl, opts); err != nil {
		return err
	}
	variant := f.Variant
	if variant == "auto" && f.Installer != "" {
		version, v, err := dcos.InstallerVariant(e.ctx, f.Installer)
		if err != nil {
			return err
		}
		variant = v
		e.say("installer: DC/OS %s (%s)", version, variant)
	}
	if variant == "enterprise" && waitOpts.SuperuserUsername == "" {
		// minidcos's defaults for DC/OS Enterprise.
		waitOpts.SuperuserUsername = "admin"
		if waitOpts.SuperuserPassword == "" {
			waitOpts.SuperuserPassword = "admin"
		}
	}
	e.say("installed DC/OS on %d nodes of %s in %s (logs: %s/install)", len(cl.Nodes), cl.ID, time.Since(start).Round(time.Millisecond), cl.StateDir)
	if wait {
		return waitFor(e, cl, waitOpts, "", nil)
	}
	return nil
}

// waitFor waits for DC/OS, or, when command is not empty, until command
// succeeds on every node (of roles, when given).
func waitFor(e *env, cl *cluster.Cluster, opts dcos.WaitOptions, command string, roles []cluster.Role) error {
	start := time.Now()
	var err error
	if command != "" {
		e.now("waiting for `%s` on cluster %q", command, cl.ID)
		err = script.Wait(e.ctx, cl, command, script.WaitOptions{Timeout: opts.Timeout, Roles: roles})
	} else {
		e.now("waiting for DC/OS on cluster %q", cl.ID)
		err = dcos.Wait(e.ctx, cl, opts)
	}
	if err != nil {
		return err
	}
	e.say("cluster %s is ready (waited %s)", cl.ID, time.Since(start).Round(time.Millisecond))
	return nil
}

// UpgradeCmd upgrades DC/OS.
type UpgradeCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	dcosFlags
}

func (c *UpgradeCmd) Run(e *env) error {
	if (c.Installer == "") == (c.InstallerURL == "") {
		return invalid(errors.New("give exactly one of --installer PATH or --installer-url URL"))
	}
	e.now("upgrading DC/OS on cluster %q", c.ClusterID)
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	defer cl.Close()
	opts, err := c.options()
	if err != nil {
		return err
	}
	start := time.Now()
	e.now("upgrading DC/OS on cluster %q", cl.ID)
	if err := dcos.Upgrade(e.ctx, cl, opts); err != nil {
		return err
	}
	e.say("upgraded DC/OS on %s in %s", cl.ID, time.Since(start).Round(time.Millisecond))
	return nil
}

// WaitCmd waits for a cluster.
type WaitCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	waitFlags
	Command string   `help:"Instead of DC/OS's checks, poll until this shell command succeeds on every node (or every node of --role)."`
	Role    []string `sep:"none" help:"With --command: only nodes of this role (repeatable)."`
}

func (c *WaitCmd) Run(e *env) error {
	if c.Command != "" {
		e.now("waiting for `%s` on cluster %q", c.Command, c.ClusterID)
	} else {
		e.now("waiting for DC/OS on cluster %q", c.ClusterID)
	}
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	defer cl.Close()
	opts, err := c.options()
	if err != nil {
		return err
	}
	if len(c.Role) > 0 && c.Command == "" {
		return invalid(errors.New("--role goes with --command"))
	}
	var roles []cluster.Role
	for _, r := range c.Role {
		role, err := parseRole(r)
		if err != nil {
			return err
		}
		roles = append(roles, role)
	}
	return waitFor(e, cl, opts, c.Command, roles)
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"
	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/cluster/dcos"
)

// CLI is the command line. Commands call only the cluster packages
// (cluster, cluster/script, cluster/dcos).
type CLI struct {
	PluginDir   []string    `name:"plugin-dir" group:"global" help:"Directory searched first for e2e-backend-* plugins (repeatable)." type:"path" sep:"none"`
	Verbose     int         `short:"v" type:"counter" group:"global" help:"More logs on stderr (-v info: what is made, each step's time; -vv debug: e2e's and the plugins'; -vvv also the plugin machinery's)."`
	ShowVersion versionFlag `name:"version" group:"global" help:"Show the version (as e2e version does) and exit."`
	Quiet       bool        `short:"q" group:"global" help:"No progress or info lines on stderr: only results (stdout), warnings and errors."`

	Version VersionCmd `cmd:"" help:"Show the version of e2e and the plugin protocol it speaks."`
	Plugin  PluginCmd  `cmd:"" help:"List, describe, install and remove backend plugins."`
	Create  CreateCmd  `cmd:"" help:"Create a cluster."`
	List    ListCmd    `cmd:"" help:"List clusters."`
	Inspect InspectCmd `cmd:"" help:"Show a cluster's nodes, their states, addresses and SSH endpoints."`
	Destroy DestroyCmd `cmd:"" help:"Destroy clusters."`
	Stop    StopCmd    `cmd:"" help:"Stop a cluster's nodes, keeping them, for backends that can (e2e start brings them back)."`
	Start   StartCmd   `cmd:"" help:"Start a stopped cluster's nodes and wait until every node answers."`

	Run      RunCmd      `cmd:"" help:"Run a command on nodes (exit code: the remote command's)."`
	SSH      SSHCmd      `cmd:"" name:"ssh" help:"Open a shell on a node, or run a command line there (as ssh HOST COMMAND)."`
	SendFile SendFileCmd `cmd:"" name:"send-file" help:"Copy a file or directory to nodes (default: every node)."`
	Download DownloadCmd `cmd:"" help:"Copy a file or directory from a node."`
	Forget   ForgetCmd   `cmd:"" help:"Drop the record of a cluster without touching its machines."`
	Clean    CleanCmd    `cmd:"" help:"Remove what backends made that belongs to no recorded cluster (leftovers of interrupted runs)."`

	Install InstallCmd `cmd:"" help:"Install DC/OS (advanced installer) or run an install script on every node."`
	Upgrade UpgradeCmd `cmd:"" help:"Upgrade DC/OS with a new installer (masters one at a time, then agents)."`
	Wait    WaitCmd    `cmd:"" help:"Wait until DC/OS is up, or until a command succeeds on every node."`
	Reap    ReapCmd    `cmd:"" hidden:"" help:"Destroy clusters once a process has ended (started by create --reap-with-pid)."`

	Logs        LogsCmd        `cmd:"" help:"Write a logs bundle of a cluster: every node's journal, the installer logs e2e kept, and the backend's view of each node."`
	PortForward PortForwardCmd `cmd:"" name:"port-forward" help:"Forward local ports to ports of a node through SSH, until Ctrl-C."`
	Web         WebCmd         `cmd:"" help:"Forward a local port to master_0's port 80 (the DC/OS web UI), print the URL and open it on a desktop."`
	SSHConfig   SSHConfigCmd   `cmd:"" name:"ssh-config" help:"Print an OpenSSH config with a Host per node (ssh -F FILE agent_0, scp, rsync, Ansible)."`

	Doctor     DoctorCmd     `cmd:"" help:"Check what e2e and the backends need on this machine, and say how to fix what is missing."`
	Completion CompletionCmd `cmd:"" help:"Print the shell completion script for bash, zsh or fish (source <(e2e completion bash))."`
	Complete   CompleteCmd   `cmd:"" name:"__complete" hidden:"" help:"Candidates for the completion scripts."`
}

// VersionCmd prints the version.
type VersionCmd struct {
	JSON bool `help:"Print JSON."`
}

func (c *VersionCmd) Run(e *env) error {
	if c.JSON {
		return printJSON(e, map[string]any{"version": version, "commit": commit, "protocol": cluster.ProtocolVersion})
	}
	printVersion(e.stdout)
	return nil
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "e2e %s (protocol %d", version, cluster.ProtocolVersion)
	if commit != "" {
		fmt.Fprintf(w, ", commit %s", commit)
	}
	fmt.Fprintln(w, ")")
}

// versionFlag is --version: it prints what e2e version prints and exits
// before any command is needed, as kong.VersionFlag does.
type versionFlag bool

// BeforeReset is kong's hook that runs as soon as the flag is seen.
func (versionFlag) BeforeReset(app *kong.Kong) error {
	printVersion(app.Stdout)
	app.Exit(exitOK)
	return nil
}

// CreateCmd creates a cluster.
type CreateCmd struct {
	Backend      string        `help:"Backend to create the machines with (see: e2e plugin list)."`
	ClusterID    string        `name:"cluster-id" short:"c" help:"Cluster id (default \"${default_id}\")."`
	Masters      *int          `help:"Number of masters (default 1)."`
	Agents       *int          `help:"Number of agents (default 1)."`
	PublicAgents *int          `name:"public-agents" help:"Number of public agents (default 1)."`
	Option       []string      `short:"o" name:"option" placeholder:"NAME=VALUE" help:"Backend option (repeatable; a list option appends; a value starting with [ or { is JSON). The options of a backend: e2e plugin info NAME." sep:"none"`
	Config       string        `help:"YAML cluster file: backend, cluster_id, masters, agents, public_agents, options." type:"existingfile"`
	SSHUser      string        `name:"ssh-user" help:"User to log in as (default: the backend's)."`
	SSHKey       string        `name:"ssh-key" help:"Private key to log in with instead of a key pair e2e generates." type:"existingfile"`
	SSHAgent     bool          `name:"ssh-agent" help:"Also offer the keys of your ssh-agent (SSH_AUTH_SOCK)."`
	KnownHosts   string        `name:"known-hosts" help:"known_hosts file with the nodes' host keys (default ~/.ssh/known_hosts when the backend reports none)." type:"existingfile"`
	AcceptNew    bool          `name:"accept-new-host-keys" help:"Record the host key of a node met for the first time (changed keys are always refused)."`
	SSHProxy     string        `name:"ssh-proxy-command" placeholder:"CMD" help:"Reach the nodes over the stdin and stdout of CMD instead of dialling them, as OpenSSH's ProxyCommand (tokens %h host, %p port, %r user, %n node such as master_0, %% a literal %); stored with the cluster, e.g. 'ssh -W %h:%p bastion'."`
	SSHTimeout   time.Duration `name:"ssh-timeout" help:"How long to wait for every node's sshd after the backend made the machines (default 3m); machines that already exist are tried once unless this is given."`
	dcosFlags    `group:"DC/OS (create and install in one go):"`
	Wait         bool `help:"With --installer: wait for DC/OS afterwards."`
	waitFlags    `group:"DC/OS (create and install in one go):"`
	Retain       bool `help:"Keep what was made if creation fails or is interrupted (for debugging)."`
	JSON         bool `help:"Print the cluster as JSON (as e2e inspect --json) instead of its id."`
	ReapWithPID  *int `name:"reap-with-pid" placeholder:"PID" help:"Destroy the cluster once process PID has ended, however it ends (kill -9 too): a reaper process watches it, and exits when the cluster is destroyed otherwise."`

	// LogsOnFailure is a directory for the logs bundle of a failed run.
	LogsOnFailure string `name:"logs-on-failure" placeholder:"DIR" help:"When creating or installing fails once the machines exist, write a logs bundle (as e2e logs) into DIR (new or empty) first."`
}

// parseOptions turns -o NAME=VALUE flags into option values: repeated names
// become lists, values starting with [ or { are JSON.
func parseOptions(flags []string) (map[string]any, error) {
	values := map[string][]any{}
	var order []string
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, invalid(fmt.Errorf("option %q is not NAME=VALUE", f))
		}
		var v any = value
		if strings.HasPrefix(value, "[") || strings.HasPrefix(value, "{") {
			if err := json.Unmarshal([]byte(value), &v); err != nil {
				return nil, invalid(fmt.Errorf("option %q: the value starts with %q but is not JSON: %v", name, value[:1], err))
			}
		}
		if _, seen := values[name]; !seen {
			order = append(order, name)
		}
		values[name] = append(values[name], v)
	}
	out := map[string]any{}
	for _, name := range order {
		vs := values[name]
		if len(vs) == 1 {
			out[name] = vs[0]
			continue
		}
		var list []any
		for _, v := range vs {
			if sub, ok := v.([]any); ok {
				list = append(list, sub...)
			} else {
				list = append(list, v)
			}
		}
		out[name] = list
	}
	return out, nil
}

func invalid(err error) error { return &cluster.InvalidError{Err: err} }

// pick returns the count given by flag or file as a cluster.Spec count:
// 0 (not given) when neither gives it, cluster.None for 0.
func pick(flag *int, file *int) int {
	n := flag
	if n == nil {
		n = file
	}
	switch {
	case n == nil:
		return 0
	case *n == 0:
		return cluster.None
	}
	return *n
}

func (c *CreateCmd) Run(e *env) error {
	var file clusterFile
	if c.Config != "" {
		var err error
		if file, err = loadClusterFile(c.Config); err != nil {
			return err
		}
	}
	spec := cluster.Spec{Backend: c.Backend, ID: c.ClusterID, SSHUser: c.SSHUser, Retain: c.Retain,
		SSHKey: c.SSHKey, SSHAgent: c.SSHAgent, KnownHosts: c.KnownHosts, AcceptNewHostKeys: c.AcceptNew,
		SSHTimeout: c.SSHTimeout, SSHProxyCommand: c.SSHProxy, LogsOnFailure: c.LogsOnFailure}
	if err := checkLogsDir("--logs-on-failure", c.LogsOnFailure); c.LogsOnFailure != "" && err != nil {
		return err
	}
	if spec.Backend == "" {
		spec.Backend = file.Backend
	}
	if spec.ID == "" {
		spec.ID = file.ClusterID
	}
	if spec.Backend == "" {
		return invalid(errors.New("no backend given: use --backend NAME or backend: in --config (see `e2e plugin list`)"))
	}
	for _, n := range []*int{c.Masters, c.Agents, c.PublicAgents, file.Masters, file.Agents, file.PublicAgents} {
		if n != nil && *n < 0 {
			return invalid(fmt.Errorf("node counts cannot be negative (got %d)", *n))
		}
	}
	spec.Masters, spec.Agents, spec.PublicAgents = pick(c.Masters, file.Masters), pick(c.Agents, file.Agents), pick(c.PublicAgents, file.PublicAgents)
	if spec.Masters == cluster.None && spec.Agents == cluster.None && spec.PublicAgents == cluster.None {
		return invalid(errors.New("a cluster needs at least one node"))
	}
	flagOpts, err := parseOptions(c.Option)
	if err != nil {
		return err
	}
	spec.Options = map[string]any{}
	for k, v := range file.Options {
		spec.Options[k] = v
	}
	for k, v := range flagOpts {
		spec.Options[k] = v
	}
	if c.dcosFlags.given() {
		// Refuse before any machine is made.
		opts, err := c.dcosFlags.options()
		if err != nil {
			return err
		}
		if _, err := c.waitFlags.options(); err != nil {
			return err
		}
		if err := dcos.CheckInstaller(e.ctx, e.manager, spec.Backend, opts); err != nil {
			return err
		}
	}
	watch, err := c.reapTarget()
	if err != nil {
		return err
	}
	start := time.Now()
	id := spec.ID
	if id == "" {
		id = cluster.DefaultID
	}
	e.now("creating cluster %q", id)
	cl, err := e.manager.Create(e.ctx, spec)
	if err != nil {
		err = file.locateOptions(err, flagOpts)
		if e.ctx.Err() != nil {
			switch {
			case spec.Retain:
				e.outcome = fmt.Sprintf("what was made is retained: `e2e destroy -c %s` removes it", id)
			case errors.Is(err, cluster.ErrCleanupFailed):
				e.outcome = oneLine(err)
			default:
				e.outcome = "nothing was left behind"
			}
		}
		return err
	}
	took := time.Since(start).Round(time.Millisecond)
	if e.verbose > 0 {
		for _, n := range cl.Nodes {
			e.info(cl.ID, "%s: %s, address %s, SSH %s", n.ID(), n.Name, orDash(n.PrivateAddress), sshColumn(n))
		}
		e.info(cl.ID, "state (key pair, known_hosts): %s", cl.StateDir)
	}
	nodes := fmt.Sprintf("%d %s", len(cl.Nodes), plural(len(cl.Nodes), "node"))
	if info, err := e.manager.Backend(e.ctx, cl.Backend); err == nil && !info.Capabilities.Destroy {
		// A backend that cannot destroy found machines that exist: e2e
		// made none, it recorded them.
		e.say("recorded cluster %s (%d existing %s, backend %s) in %s", cl.ID, len(cl.Nodes), plural(len(cl.Nodes), "node"), cl.Backend, took)
	} else {
		e.say("created cluster %s (%s, backend %s) in %s", cl.ID, nodes, cl.Backend, took)
	}
	if c.ReapWithPID != nil {
		if err := startReaper(e, spec, watch, cl); err != nil {
			return err
		}
	}
	if c.JSON {
		if err := printJSON(e, cl); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stdout, cl.ID)
	}
	if c.dcosFlags.given() {
		defer cl.Close()
		err := installDCOS(e, cl, c.dcosFlags, c.Wait, c.waitFlags, time.Now())
		if err != nil {
			logsOnFailure(e, cl, c.LogsOnFailure, err)
		}
		return err
	}
	return nil
}

// ListCmd lists clusters.
type ListCmd struct {
	Backend string `help:"Only clusters of this backend."`
	JSON    bool   `help:"Print JSON."`
}

func (c *ListCmd) Run(e *env) error {
	e.now("listing clusters")
	rows, err := e.manager.List(e.ctx, cluster.ListOptions{Backend: c.Backend})
	if err != nil {
		return err
	}
	if c.JSON {
		if rows == nil {
			rows = []cluster.Summary{}
		}
		return printJSON(e, rows)
	}
	if len(rows) == 0 {
		e.say("no clusters")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tBACKEND\tMASTERS\tAGENTS\tPUBLIC_AGENTS\tSTATUS\tAGE\tEXPIRES")
	now := time.Now()
	for _, r := range rows {
		status := r.Status
		if r.Home != "" && r.Home != e.manager.Home() {
			// Made from another state directory: another user's, or
			// another test run's (list --json names it).
			status += " (other E2E_HOME)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", r.ID, r.Backend, r.Masters, r.Agents, r.PublicAgents, status,
			ageColumn(r.CreatedAt, now), expiresColumn(r.ExpiresAt, now))
	}
	return tw.Flush()
}

// InspectCmd shows one cluster.
type InspectCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	JSON      bool   `help:"Print JSON."`
}

func (c *InspectCmd) Run(e *env) error {
	e.now("inspecting cluster %q", c.ClusterID)
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	// The installed DC/OS, when there is one and the nodes answer.
	var installed *dcos.Version
	if v, err := dcos.InstalledVersion(e.ctx, cl); err == nil && v.Version != "" {
		installed = &v
	}
	cl.Close()
	if c.JSON {
		return printJSON(e, struct {
			*cluster.Cluster
			DCOS *dcos.Version `json:"dcos,omitempty"`
		}{cl, installed})
	}
	w := e.stdout
	fmt.Fprintf(w, "cluster %s (backend %s %s), created %s\n", cl.ID, cl.Backend, cl.PluginVersion, cl.CreatedAt.Local().Format(time.DateTime))
	if installed != nil {
		fmt.Fprintf(w, "DC/OS %s (%s)\n", installed.Version, installed.Variant)
	}
	fmt.Fprintf(w, "status: %s\n", cl.Status)
	if !cl.ExpiresAt.IsZero() {
		fmt.Fprintf(w, "expires: %s (%s)\n", cl.ExpiresAt.Local().Format(time.DateTime), expiresColumn(cl.ExpiresAt, time.Now()))
	}
	fmt.Fprintf(w, "state: %s\n", cl.StateDir)
	if cl.Transport != "" {
		fmt.Fprintf(w, "transport: %s\n", cl.Transport)
	}
	if cl.SSHProxyCommand != "" {
		fmt.Fprintf(w, "ssh proxy command: %s\n", cl.SSHProxyCommand)
	}
	for _, k := range slices.Sorted(maps.Keys(cl.Details)) {
		fmt.Fprintf(w, "%s: %s\n", k, cl.Details[k])
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tNAME\tPRIVATE_ADDRESS\tSSH")
	for _, n := range cl.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.ID(), n.State, n.Name, orDash(n.PrivateAddress), sshColumn(n))
	}
	return tw.Flush()
}

// sshColumn is a node's SSH endpoint as inspect shows it, "-" when it has
// none (a stopped container publishes no port).
func sshColumn(n cluster.Node) string {
	if n.SSH.Host == "" || n.SSH.Port == 0 {
		return "-"
	}
	return fmt.Sprintf("%s@%s", n.SSH.User, net.JoinHostPort(n.SSH.Host, strconv.Itoa(n.SSH.Port)))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// DestroyCmd destroys clusters.
type DestroyCmd struct {
	ClusterID []string `name:"cluster-id" short:"c" help:"Cluster id (repeatable)." xor:"which" sep:"none"`
	All       bool     `help:"Destroy every cluster this e2e has a record of." xor:"which"`
	Expired   bool     `help:"Destroy every cluster of this E2E_HOME whose lifespan has passed, as its backend reports it (recorded here, or made from here and forgotten; see EXPIRES in e2e list)." xor:"which"`
	AnyHome   bool     `name:"any-home" help:"With --expired: also expired clusters made from another E2E_HOME, or that a backend cannot say which E2E_HOME made (a sweep of forgotten clusters on a shared engine or account)."`
	JSON      bool     `help:"Print the ids of the destroyed clusters as a JSON array."`
}

func (c *DestroyCmd) Run(e *env) error {
	if c.JSON {
		c.JSON = false
		return jsonLines(e, func() error { return c.Run(e) })
	}
	if c.AnyHome && !c.Expired {
		return invalid(errors.New("--any-home goes with --expired"))
	}
	if c.Expired {
		return destroyExpired(e, cluster.ExpiredOptions{AnyHome: c.AnyHome})
	}
	ids := c.ClusterID
	if c.All {
		var err error
		if ids, err = e.manager.IDs(); err != nil {
			return err
		}
		if len(ids) == 0 {
			e.say("no clusters to destroy")
			return nil
		}
	} else if len(ids) == 0 {
		return invalid(errors.New("which cluster? give -c ID (repeatable), --all or --expired"))
	}
	var errs []error
	for _, id := range ids {
		e.now("destroying cluster %q", id)
		if err := e.manager.Destroy(e.ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		e.say("destroyed %s", id)
		fmt.Fprintln(e.stdout, id)
	}
	return errors.Join(errs...)
}

// ForgetCmd drops a cluster's record.
type ForgetCmd struct {
	ClusterID string `name:"cluster-id" short:"c" placeholder:"ID" help:"Cluster id (required)."`
}

// Validate asks for the cluster: forget has no default, so that a record
// is never dropped by accident.
func (c *ForgetCmd) Validate() error {
	if c.ClusterID == "" {
		return invalid(errors.New("which cluster? give -c ID (e2e list shows them)"))
	}
	return nil
}

func (c *ForgetCmd) Run(e *env) error {
	if err := e.manager.Forget(e.ctx, c.ClusterID); err != nil {
		return err
	}
	e.say("forgot %s (its machines were not touched)", c.ClusterID)
	return nil
}

func printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// CleanCmd removes leftovers.
type CleanCmd struct {
	Backend string `help:"Only this backend (default: every backend that can clean)."`
	DryRun  bool   `name:"dry-run" help:"Only list what would be removed."`
	JSON    bool   `help:"Print what was removed (or would be) as a JSON array of lines."`
}

func (c *CleanCmd) Run(e *env) error {
	if c.JSON {
		c.JSON = false
		return jsonLines(e, func() error { return c.Run(e) })
	}
	e.now("looking for leftovers")
	lines, err := e.manager.Clean(e.ctx, cluster.CleanOptions{Backend: c.Backend, DryRun: c.DryRun})
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
	if err != nil {
		return err
	}
	switch {
	case len(lines) == 0:
		e.say("nothing to clean")
	case c.DryRun:
		e.say("%d %s would be removed; run e2e clean without --dry-run to remove them", len(lines), plural(len(lines), "resource"))
	default:
		e.say("removed %d %s", len(lines), plural(len(lines), "resource"))
	}
	return nil
}

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/cluster/dcos"
	"golang.org/x/term"
)

// exitSSHFailed is ssh's code when SSH itself failed.
const exitSSHFailed = 255

// nodeSelection picks nodes by id, name or address, by role, or all.
type nodeSelection struct {
	Node []string `help:"Node: master_0, agent_1, public_agent_0, or a name or address as e2e inspect shows (repeatable)." placeholder:"NODE" sep:"none"`
	Role []string `help:"Every node of a role: master, agent, public_agent (repeatable)." placeholder:"ROLE" sep:"none"`
	All  bool     `help:"Every node."`
}

func parseRole(s string) (cluster.Role, error) {
	switch strings.ReplaceAll(s, "-", "_") {
	case "master", "masters":
		return cluster.RoleMaster, nil
	case "agent", "agents":
		return cluster.RoleAgent, nil
	case "public_agent", "public_agents":
		return cluster.RolePublicAgent, nil
	}
	return "", invalid(fmt.Errorf("unknown role %q: use master, agent or public_agent", s))
}

// pick returns the selected nodes in node order; none selected means def.
func (s nodeSelection) pick(c *cluster.Cluster, def func() []cluster.Node) ([]cluster.Node, error) {
	want := map[string]bool{}
	for _, which := range s.Node {
		n, err := c.Node(which)
		if err != nil {
			return nil, err
		}
		want[n.ID()] = true
	}
	for _, r := range s.Role {
		role, err := parseRole(r)
		if err != nil {
			return nil, err
		}
		nodes := c.NodesOf(role)
		if len(nodes) == 0 {
			return nil, invalid(fmt.Errorf("cluster %q has no %s nodes", c.ID, role))
		}
		for _, n := range nodes {
			want[n.ID()] = true
		}
	}
	if s.All || (len(want) == 0 && def == nil) {
		for _, n := range c.Nodes {
			want[n.ID()] = true
		}
	}
	if len(want) == 0 {
		return def(), nil
	}
	var out []cluster.Node
	for _, n := range c.Nodes {
		if want[n.ID()] {
			out = append(out, n)
		}
	}
	return out, nil
}

func firstMaster(c *cluster.Cluster) func() []cluster.Node {
	return func() []cluster.Node {
		if m := c.Masters(); len(m) > 0 {
			return m[:1]
		}
		return c.Nodes[:1]
	}
}

// RunCmd runs a command on nodes.
type RunCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	nodeSelection
	Env     []string `short:"e" placeholder:"K=V" help:"Environment variable for the command (repeatable)." sep:"none"`
	User    string   `help:"Run as this user (through sudo)."`
	Sudo    bool     `help:"Run as root (through sudo)."`
	TTY     bool     `name:"tty" help:"Give the command a terminal (default when one node is chosen and e2e runs in one)." xor:"tty"`
	NoTTY   bool     `name:"no-tty" help:"Never give the command a terminal." xor:"tty"`
	JSON    bool     `help:"Capture each node's output and exit code and print them as one JSON array, in node order."`
	TestEnv bool     `name:"test-env" help:"Run in DC/OS's test environment, as run_with_test_environment did (environment.export sourced, in the integration-test directory, MASTER_HOSTS, SLAVE_HOSTS, PUBLIC_SLAVE_HOSTS, DCOS_DNS_ADDRESS... set)."`
	Command []string `arg:"" optional:"" passthrough:"partial" help:"Command and arguments, after -- (or from the first argument that is not a flag)."`
}

func (c *RunCmd) Run(e *env) error {
	if len(c.Command) > 0 && c.Command[0] == "--" {
		c.Command = c.Command[1:]
	}
	if len(c.Command) == 0 {
		return invalid(errors.New("no command given: e2e run -c ID -- COMMAND [ARG...]"))
	}
	// Everything about the command is checked before anything runs.
	envVars := map[string]string{}
	for _, kv := range c.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return invalid(fmt.Errorf("-e %q is not NAME=VALUE", kv))
		}
		if err := (cluster.Command{Argv: []string{"true"}, Env: map[string]string{k: v}}).Validate(); err != nil {
			return invalid(fmt.Errorf("-e %q: %w", kv, errors.Unwrap(err)))
		}
		envVars[k] = v
	}
	cmd := cluster.Command{Argv: c.Command, Env: envVars, User: c.User, Sudo: c.Sudo,
		Stdout: e.stdout, Stderr: e.stderr}
	if err := cmd.Validate(); err != nil {
		return err
	}
	e.now("running `%s` on cluster %q", strings.Join(c.Command, " "), c.ClusterID)
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	defer cl.Close()
	nodes, err := c.pick(cl, firstMaster(cl))
	if err != nil {
		return err
	}
	e.now("running `%s` on %s of cluster %q", strings.Join(c.Command, " "), nodeList(nodes), cl.ID)
	if c.TestEnv {
		cmd = dcos.WithTestEnv(cl, cmd)
	}
	if c.JSON {
		return runJSON(e, nodes, cmd)
	}
	stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
	if len(nodes) == 1 {
		cmd.Stdin = os.Stdin
		// The SSH layer puts a local terminal in raw mode while a remote
		// one is attached.
		cmd.TTY = c.TTY || (!c.NoTTY && stdinTTY && e.isTTY)
		st, err := nodes[0].Run(e.ctx, cmd)
		return exitFor(st, err)
	}
	if c.TTY {
		return invalid(errors.New("--tty needs exactly one node"))
	}
	results := cl.RunOn(e.ctx, nodes, cmd, cluster.RunOptions{Prefix: true})
	return runSummary(results)
}

// runSummary names, in one line, every node where the command failed and
// how; e2e exits with the first non-zero code in node order.
func runSummary(results []cluster.NodeResult) error {
	var (
		failed []string
		first  error
	)
	for _, r := range results {
		err := exitFor(r.Status, r.Err)
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		switch {
		case r.Err != nil:
			msg := oneLine(r.Err)
			if !strings.HasPrefix(msg, r.Node.ID()) {
				msg = r.Node.ID() + ": " + msg
			}
			failed = append(failed, msg)
		case r.Status.Signal != "":
			failed = append(failed, fmt.Sprintf("%s exited %d (signal %s)", r.Node.ID(), r.Status.Code, r.Status.Signal))
		default:
			failed = append(failed, fmt.Sprintf("%s exited %d", r.Node.ID(), r.Status.Code))
		}
	}
	if first == nil {
		return nil
	}
	code := exitFailure
	var ee exitError
	if errors.As(first, &ee) {
		code = ee.code
	}
	msg := fmt.Sprintf("command failed on %d of %d nodes: %s", len(failed), len(results), strings.Join(failed, ", "))
	return exitError{code: code, err: summary{msg, first}}
}

// summary is a message about several failures that unwraps to the first.
type summary struct {
	msg   string
	first error
}

func (s summary) Error() string { return s.msg }
func (s summary) Unwrap() error { return s.first }

// nodeList names the nodes a command runs on, briefly.
func nodeList(nodes []cluster.Node) string {
	if len(nodes) == 1 {
		return nodes[0].ID()
	}
	return fmt.Sprintf("%d nodes", len(nodes))
}

// exitFor turns a command's end into e2e's exit: the remote code, or 255
// when SSH itself failed.
func exitFor(st cluster.ExitStatus, err error) error {
	var sshErr *cluster.SSHError
	switch {
	case errors.As(err, &sshErr):
		return exitError{code: exitSSHFailed, err: err}
	case err != nil:
		return err
	case st.Code != 0:
		return exitError{code: st.Code, quiet: true}
	}
	return nil
}

// SSHCmd opens an interactive shell, or runs a command line in the login
// shell as OpenSSH's ssh does with a command.
type SSHCmd struct {
	ClusterID string   `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	Node      string   `help:"Node (default master_0)." placeholder:"NODE"`
	Command   []string `arg:"" optional:"" passthrough:"partial" help:"Command line to run instead of a shell, after -- (as ssh HOST COMMAND: the words are joined with spaces and the login shell runs them, so pipes and $VARS work; e2e run quotes each word instead)."`
}

func (c *SSHCmd) Run(e *env) error {
	if len(c.Command) > 0 && c.Command[0] == "--" {
		c.Command = c.Command[1:]
	}
	e.now("opening a shell on cluster %q", c.ClusterID)
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	defer cl.Close()
	n := firstMaster(cl)()[0]
	if c.Node != "" {
		if n, err = cl.Node(c.Node); err != nil {
			return err
		}
	}
	stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
	cmd := cluster.Command{Stdin: os.Stdin, Stdout: e.stdout, Stderr: e.stderr}
	if len(c.Command) == 0 {
		e.now("in a shell on %s of cluster %q", n.ID(), cl.ID)
		cmd.Shell = `exec "${SHELL:-/bin/sh}" -l`
		// Without a terminal the shell reads commands from stdin, as ssh does.
		cmd.TTY = stdinTTY
	} else {
		line := strings.Join(c.Command, " ")
		e.now("running `%s` on %s of cluster %q", line, n.ID(), cl.ID)
		// The line is an argument of the login shell, never quoted into
		// another command line.
		cmd.Argv = []string{"/bin/sh", "-c", `exec "${SHELL:-/bin/sh}" -l -c "$1"`, "e2e-ssh", line}
		cmd.TTY = stdinTTY && e.isTTY
	}
	st, err := n.Run(e.ctx, cmd)
	return exitFor(st, err)
}

// SendFileCmd copies a file or directory to nodes.
type SendFileCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	nodeSelection
	Src string `arg:"" help:"Local file or directory (links followed)."`
	Dst string `arg:"" help:"Path on the nodes: it becomes a copy of SRC; ending in / means into that directory."`
}

func (c *SendFileCmd) Run(e *env) error {
	e.now("sending %s to cluster %q", c.Src, c.ClusterID)
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	defer cl.Close()
	nodes, err := c.pick(cl, nil)
	if err != nil {
		return err
	}
	e.now("sending %s to %s of cluster %q", c.Src, nodeList(nodes), cl.ID)
	prog := e.transferProgress(cl.ID, "send-file", nodes)
	// SRC is walked once, before anything is sent: a mistake in it is
	// said once, not once per node.
	if err := cl.UploadTo(e.ctx, nodes, c.Src, c.Dst, prog.node); err != nil {
		return sshExit(err)
	}
	e.say("sent %s to %d %s", c.Src, len(nodes), plural(len(nodes), "node"))
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// sshExit gives SSH failures ssh's exit code.
func sshExit(err error) error {
	var sshErr *cluster.SSHError
	if errors.As(err, &sshErr) {
		return exitError{code: exitSSHFailed, err: err}
	}
	return err
}

// DownloadCmd copies a file or directory from a node.
type DownloadCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	Node      string `help:"Node to copy from (required): master_0, agent_1, ... or a name or address as e2e inspect shows." placeholder:"NODE"`
	Src       string `arg:"" help:"Path on the node (links followed)."`
	Dst       string `arg:"" help:"Local path: it becomes a copy of SRC; ending in / means into that directory."`
}

// Validate asks for the node: a download has one source.
func (c *DownloadCmd) Validate() error {
	if c.Node == "" {
		return invalid(errors.New("which node? give --node NODE (master_0, agent_1, ... as e2e inspect shows)"))
	}
	return nil
}

func (c *DownloadCmd) Run(e *env) error {
	e.now("downloading %s from %s of cluster %q", c.Src, c.Node, c.ClusterID)
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	defer cl.Close()
	n, err := cl.Node(c.Node)
	if err != nil {
		return err
	}
	e.now("downloading %s from %s of cluster %q", c.Src, n.ID(), cl.ID)
	prog := e.transferProgress(cl.ID, "download", []cluster.Node{n})
	if err := n.Download(e.ctx, c.Src, c.Dst, prog.node(0)); err != nil {
		return sshExit(err)
	}
	return nil
}

// transfers shows the progress of parallel transfers: on a terminal a
// bar per node, made when its transfer starts; elsewhere the nodes summed
// into one step.
type transfers struct {
	id     string
	step   string
	nodes  []string
	done   []atomic.Int64
	total  []atomic.Int64
	shown  atomic.Int64
	report func(cluster.Event)
	// bar makes a node's bar on a terminal; nil elsewhere.
	bar func(clusterID, node, verb string) func(done, total int64)
}

func (e *env) transferProgress(id, step string, nodes []cluster.Node) *transfers {
	t := &transfers{id: id, step: step, done: make([]atomic.Int64, len(nodes)), total: make([]atomic.Int64, len(nodes)),
		report: e.progress.event}
	for _, n := range nodes {
		t.nodes = append(t.nodes, n.ID())
	}
	if e.progress.live() {
		t.bar = e.progress.transfer
	}
	return t
}

func (t *transfers) node(i int) cluster.Progress {
	if t.bar != nil {
		var (
			once sync.Once
			bar  func(done, total int64)
		)
		return func(done, total int64) {
			once.Do(func() { bar = t.bar(t.id, t.nodes[i], t.step) })
			bar(done, total)
		}
	}
	return func(done, total int64) {
		t.done[i].Store(done)
		t.total[i].Store(total)
		var d, tot int64
		for j := range t.done {
			d += t.done[j].Load()
			tot += t.total[j].Load()
		}
		// Report each new 1% (or the end), not every packet.
		if tot > 0 {
			pct := d * 100 / tot
			if prev := t.shown.Load(); pct > prev || d == tot {
				t.shown.Store(pct)
				t.report(cluster.Event{Cluster: t.id, Step: t.step, Current: d >> 20, Total: tot >> 20, Message: "MiB"})
			}
		}
	}
}

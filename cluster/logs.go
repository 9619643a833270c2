package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
)

// Files of a logs bundle (Cluster.CollectLogs).
const (
	// LogsClusterFile is the cluster as `e2e inspect --json` shows it.
	LogsClusterFile = "cluster.json"
	// LogsJournalFile, in a node's directory, is the node's systemd
	// journal (journalctl, every boot, ISO timestamps).
	LogsJournalFile = "journal.log"
	// LogsUnitsFile, in a node's directory, lists the node's systemd units
	// and their states.
	LogsUnitsFile = "units.txt"
	// LogsInstallFile, in a node's directory, is the log e2e kept of what
	// an installer ran on the node (InstallDir).
	LogsInstallFile = "install.log"
	// LogsBackendDir, in a node's directory, holds the backend's own view
	// of the node (sdk.NodeLogger): for docker inspect.json and
	// console.log (docker logs), for aws console.log (the console output).
	LogsBackendDir = "backend"
	// LogsErrorsFile lists, one line each, what could not be collected.
	LogsErrorsFile = "errors.txt"
)

// journalLine prints the whole journal, as root when the login user is
// not (through sudo, never asking for a password).
const journalLine = `if [ "$(id -u)" = 0 ]; then journalctl --no-pager -o short-iso-precise; else sudo -n journalctl --no-pager -o short-iso-precise; fi`

// unitsLine lists the systemd units.
const unitsLine = `systemctl --no-pager --all list-units`

// CollectLogs writes a logs bundle of the cluster into dir (made if
// missing, 0700), as `e2e logs` does and as `kind export logs` does for
// kind: cluster.json at the top (LogsClusterFile), the installer logs e2e
// kept that belong to no node in install/, and a directory per node named
// by its id (master_0, ...) holding its systemd journal (LogsJournalFile)
// and units (LogsUnitsFile), read over the cluster's transport; its
// installer log (LogsInstallFile); and, when the backend keeps a view of
// its own (sdk.NodeLogger: the docker and aws backends), that view in
// LogsBackendDir. Files are 0600: a journal may hold what is not for
// everyone.
//
// nodes are the nodes to collect (none: every node). A node that does not
// run has no journal, but its backend's view is collected (a stopped
// container's console log says why it stopped). Collection is best effort:
// everything that can be collected is, and what could not be is listed in
// LogsErrorsFile and returned as one error naming each part; the bundle
// is there either way, unless dir itself could not be made. Every file
// is created new (never replacing one that appeared meanwhile). A
// cancelled ctx stops it and removes what it wrote (the files and
// directories it created, dir too when it made it; nothing else), so an
// interrupted bundle is never mistaken for a whole one.
func (c *Cluster) CollectLogs(ctx context.Context, dir string, nodes ...Node) error {
	if c.manager == nil {
		return errNotManaged
	}
	meta, err := c.manager.load(c.ID)
	if err != nil {
		return err
	}
	p, err := c.manager.open(ctx, c.Backend)
	if err != nil {
		return err
	}
	defer p.Kill()
	return c.collectLogs(ctx, dir, p, clusterRef(meta), nodes)
}

// collectLogs is CollectLogs with the backend's plugin started and the
// cluster's reference at hand (also for a cluster not yet recorded:
// Create's own failures).
func (c *Cluster) collectLogs(ctx context.Context, dir string, p *plugin.Plugin, ref host.ClusterRef, nodes []Node) error {
	if len(nodes) == 0 {
		nodes = c.Nodes
	}
	b := &bundle{}
	if err := b.mkdirAll(dir); err != nil {
		return fmt.Errorf("making the logs directory: %w", err)
	}
	var problems []string
	note := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if j, err := json.MarshalIndent(c, "", "  "); err == nil {
		if err := b.writeFile(filepath.Join(dir, LogsClusterFile), append(j, '\n')); err != nil {
			note("%s: %v", LogsClusterFile, err)
		}
	}
	if err := copyInstallLogs(b, c, dir); err != nil {
		note("installer logs: %v", err)
	}
	perNode := make([][]string, len(nodes))
	ssh.FanOut(ctx, len(nodes), 8, func(ctx context.Context, i int) error {
		perNode[i] = c.collectNode(ctx, b, filepath.Join(dir, nodes[i].ID()), nodes[i], p, ref)
		return nil
	})
	for _, ps := range perNode {
		problems = append(problems, ps...)
	}
	if err := ctx.Err(); err != nil {
		b.undo()
		return err
	}
	if len(problems) == 0 {
		return nil
	}
	text := strings.Join(problems, "\n") + "\n"
	_ = b.writeFile(filepath.Join(dir, LogsErrorsFile), []byte(text))
	return &LogsError{Dir: dir, Problems: problems}
}

// logsOnFailure writes a logs bundle of a cluster Create made but found
// unusable into dir (unless dir is empty or ctx was cancelled) and
// returns err naming it.
func (m *Manager) logsOnFailure(ctx context.Context, c *Cluster, dir string, p *plugin.Plugin, ref host.ClusterRef, err error) error {
	if dir == "" || ctx.Err() != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), logsOnFailureTimeout)
	defer cancel()
	lerr := c.collectLogs(ctx, dir, p, ref, nil)
	_ = c.Close()
	var le *LogsError
	if lerr != nil && !errors.As(lerr, &le) {
		return fmt.Errorf("%w (writing the logs to %s failed too: %v)", err, dir, lerr)
	}
	return fmt.Errorf("%w (logs: %s)", err, dir)
}

// logsOnFailureTimeout bounds the collection of logs after a failure.
const logsOnFailureTimeout = 5 * time.Minute

// LogsError says what CollectLogs could not collect; the rest of the
// bundle is in Dir.
type LogsError struct {
	Dir string
	// Problems are one line each, such as "agent_0: journal: node is not
	// running".
	Problems []string
}

// Error is one line: how many parts are missing and what they are.
func (e *LogsError) Error() string {
	return fmt.Sprintf("logs bundle %s is incomplete (%d %s): %s", e.Dir, len(e.Problems), plural(len(e.Problems), "part"),
		strings.Join(e.Problems, "; "))
}

// collectNode writes one node's part of the bundle and returns what it
// could not collect.
func (c *Cluster) collectNode(ctx context.Context, b *bundle, dir string, n Node, p *plugin.Plugin, ref host.ClusterRef) []string {
	var problems []string
	note := func(what string, err error) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", n.ID(), what, strings.ReplaceAll(err.Error(), "\n", " ")))
	}
	if err := b.mkdirAll(dir); err != nil {
		return []string{fmt.Sprintf("%s: %v", n.ID(), err)}
	}
	err := copyFile(b, filepath.Join(c.StateDir, "install", n.ID()+".log"), filepath.Join(dir, LogsInstallFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		note("installer log", err)
	}
	if n.Running() {
		for _, f := range []struct{ name, line string }{{LogsJournalFile, journalLine}, {LogsUnitsFile, unitsLine}} {
			if err := runToFile(ctx, b, n, f.line, filepath.Join(dir, f.name)); err != nil {
				note(f.name, err)
			}
		}
	} else {
		note("journal", fmt.Errorf("node is %s", n.State))
	}
	if p.Desc.Calls.NodeLogs {
		bdir := filepath.Join(dir, LogsBackendDir)
		var opened []*os.File
		err := p.NodeLogs(ctx, ref, n.Name, func(name string) (io.Writer, error) {
			if err := b.mkdirAll(bdir); err != nil {
				return nil, err
			}
			f, err := b.create(filepath.Join(bdir, name))
			if err != nil {
				return nil, err
			}
			opened = append(opened, f)
			return f, nil
		})
		for _, f := range opened {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if errors.Is(err, sdk.ErrNotFound) {
			err = fmt.Errorf("the %s backend has no such node", c.Backend)
		}
		if err != nil {
			note("the "+c.Backend+" backend's view", p.Wrap("node logs", err))
		}
	}
	return problems
}

// runToFile runs a command line on a node with its output (stdout and
// stderr) in a new file.
func runToFile(ctx context.Context, b *bundle, n Node, line, path string) error {
	f, err := b.create(path)
	if err != nil {
		return err
	}
	st, err := n.Run(ctx, Command{Shell: line, Stdout: f, Stderr: f})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && st.Code != 0 {
		err = fmt.Errorf("`%s` exited %d", line, st.Code)
	}
	return err
}

// copyInstallLogs copies the installer logs of the cluster's InstallDir
// that belong to no node (genconf.log) into dir/install.
func copyInstallLogs(b *bundle, c *Cluster, dir string) error {
	src := filepath.Join(c.StateDir, "install")
	entries, err := os.ReadDir(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	nodeLogs := map[string]bool{}
	for _, n := range c.Nodes {
		nodeLogs[n.ID()+".log"] = true
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".log") || nodeLogs[e.Name()] {
			continue
		}
		if err := b.mkdirAll(filepath.Join(dir, "install")); err != nil {
			return err
		}
		errs = append(errs, copyFile(b, filepath.Join(src, e.Name()), filepath.Join(dir, "install", e.Name())))
	}
	return errors.Join(errs...)
}

// copyFile copies a regular file into a new file of the bundle (0600).
func copyFile(b *bundle, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := b.create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
)

// saveLogs writes the cluster's logs into the test's artifact directory
// (go test -artifacts) or a directory it keeps, and says where in the
// test's log.
func saveLogs(ctx context.Context, t testing.TB, c *cluster.Cluster) {
	dir, err := logsDir(t)
	if err == nil {
		err = collectLogs(ctx, c, dir)
	}
	if err != nil {
		t.Errorf("e2etest: collecting the logs of cluster %s: %v", c.ID, err)
		return
	}
	t.Logf("e2etest: the test failed; logs of cluster %s are in %s", c.ID, dir)
}

// logsDir is where the logs of a failed test go: its artifact directory
// when go test runs with -artifacts (kept under -outputdir), otherwise a
// new directory in the system's temporary directory (the artifact
// directory would be removed with the test).
func logsDir(t testing.TB) (string, error) {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return filepath.Join(t.ArtifactDir(), "e2e-logs"), nil
	}
	return os.MkdirTemp("", "e2e-logs-"+clusterID(t.Name())+"-")
}

// collectLogs writes into dir, which it creates, cluster.json (the cluster
// as e2e sees it: nodes, addresses, backend details) and, for each node
// that runs, NODE/journal.log with its systemd journal (`journalctl
// --no-pager`, as root). A node whose journal cannot be read gets
// NODE/error.txt saying why; the others are collected all the same.
func collectLogs(ctx context.Context, c *cluster.Cluster, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	desc, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), append(desc, '\n'), 0o644); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		nodeDir := filepath.Join(dir, n.ID())
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return err
		}
		if !n.Running() {
			errs[i] = os.WriteFile(filepath.Join(nodeDir, "error.txt"), []byte(fmt.Sprintf("the node is %s: no journal\n", n.State)), 0o644)
			continue
		}
		wg.Go(func() { errs[i] = journal(ctx, n, nodeDir) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// journal writes a node's systemd journal into dir/journal.log, or what
// went wrong into dir/error.txt.
func journal(ctx context.Context, n cluster.Node, dir string) error {
	f, err := os.Create(filepath.Join(dir, "journal.log"))
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	st, runErr := n.Run(ctx, cluster.Command{Argv: []string{"journalctl", "--no-pager"}, Sudo: true, Stdout: f, Stderr: &stderr})
	if err := f.Close(); err != nil {
		return err
	}
	var problem string
	switch {
	case runErr != nil:
		problem = runErr.Error()
	case st.Code != 0:
		problem = fmt.Sprintf("journalctl --no-pager exited %d: %s", st.Code, stderr.String())
	default:
		return nil
	}
	return os.WriteFile(filepath.Join(dir, "error.txt"), []byte(problem+"\n"), 0o644)
}

package e2etest

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
)

// saveLogs writes the cluster's logs into the test's artifact directory
// (go test -artifacts) or a directory it keeps, and says where in the
// test's log; the line is attributed to the test's call of New or
// Shared.Cluster.
func saveLogs(ctx context.Context, t testing.TB, c *cluster.Cluster) {
	t.Helper()
	dir, err := logsDir(t, c.ID)
	if err == nil {
		// The bundle of e2e logs: cluster.json, every node's journal,
		// the installer logs e2e kept and the backend's view.
		err = c.CollectLogs(ctx, dir)
	}
	var partial *cluster.LogsError
	switch {
	case errors.As(err, &partial):
		// What could be collected is there; say what is missing.
		t.Logf("e2etest: the test failed; logs of cluster %s are in %s (%v)", c.ID, dir, err)
	case err != nil:
		t.Errorf("e2etest: collecting the logs of cluster %s: %v", c.ID, err)
	default:
		t.Logf("e2etest: the test failed; logs of cluster %s are in %s", c.ID, dir)
	}
}

// logsDir is where the logs of a failed test go: its artifact directory
// when go test runs with -artifacts (kept under -outputdir), otherwise a
// new directory in the system's temporary directory named after the
// cluster, e2e-logs-CLUSTERID-RANDOM (the artifact directory would be
// removed with the test).
func logsDir(t testing.TB, clusterID string) (string, error) {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return filepath.Join(t.ArtifactDir(), "e2e-logs"), nil
	}
	return os.MkdirTemp("", "e2e-logs-"+clusterID+"-")
}

// Package e2etest makes e2e clusters for Go tests. New gives a test a
// cluster of its own; Shared gives the tests of a package one cluster
// between them (from TestMain). Either way, what the package makes goes
// away by itself:
//
//   - the cluster is destroyed when the test (or, for Shared, the test
//     binary's run) ends, through t.Cleanup;
//
//   - when a test failed, the cluster's logs bundle (as `e2e logs` writes
//     it: each node's systemd journal, the installer logs, the backend's
//     view, and the cluster as e2e sees it) is written into the test's artifact
//     directory (`go test -artifacts`, under -outputdir), or otherwise into
//     a directory the test's log names, before the cluster goes;
//
//   - a reaper process destroys the cluster if the test binary dies without
//     cleaning up (SIGKILL, a crash, a timeout), as testcontainers' Ryuk
//     does for containers;
//
//   - `go test -args -e2e.retain` (or Options.Retain) keeps every cluster
//     for a look afterwards, saying how to destroy it.
//
//     func TestOnACluster(t *testing.T) {
//     c := e2etest.New(t, e2etest.Options{Spec: cluster.Spec{Backend: "docker", Agents: 2}})
//     out, err := c.Masters()[0].Output(t.Context(), "hostname")
//     ...
//     }
//
// The clusters are made with the cluster package, which finds the backend
// plugins as the e2e CLI does: under go test, put them on PATH or in
// $E2E_PLUGIN_PATH, or install them with `e2e plugin install`.
package e2etest

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/cluster"
)

// RetainFlag is the name of the go test flag that keeps clusters
// (`go test ./... -args -e2e.retain`).
const RetainFlag = "e2e.retain"

func init() {
	// A test binary started as a reaper is one and nothing else.
	if cfg, ok := os.LookupEnv(reaperEnv); ok {
		os.Exit(reaperMain(cfg))
	}
	flag.Bool(RetainFlag, false, "e2etest: keep the clusters tests make (destroy them with e2e destroy -c ID)")
}

// Options say what cluster to make and how.
type Options struct {
	// Spec is the cluster (backend, node counts, options). An empty ID
	// is replaced by one made from the test's name and random letters, so
	// that tests and test runs never share an id.
	Spec cluster.Spec
	// Manager configures the cluster.Manager: the state directory (Home,
	// default $E2E_HOME) and where plugins are found.
	Manager cluster.Options
	// Retain keeps the cluster after the test, as the -e2e.retain flag.
	Retain bool
	// NoReaper makes no reaper process: a test binary killed before its
	// cleanup then leaves its cluster to `e2e destroy` or `e2e clean`.
	NoReaper bool
	// CleanupTimeout bounds collecting logs and destroying the cluster
	// after the test; zero means 5 minutes.
	CleanupTimeout time.Duration
}

// retained reports whether clusters are kept: Options.Retain or the
// -e2e.retain flag.
func (o Options) retained() bool {
	if o.Retain {
		return true
	}
	f := flag.Lookup(RetainFlag)
	return f != nil && f.Value.String() == "true"
}

func (o Options) cleanupTimeout() time.Duration {
	if o.CleanupTimeout > 0 {
		return o.CleanupTimeout
	}
	return 5 * time.Minute
}

// New creates a cluster for test t, failing the test (t.Fatal) when it
// cannot, and registers its end with t.Cleanup: when t failed, the
// cluster's logs are collected (see the package documentation); then the
// cluster is destroyed, unless retained. A reaper destroys the cluster if
// the test binary dies before that, unless Options.NoReaper or retained.
func New(t testing.TB, opts Options) *cluster.Cluster {
	t.Helper()
	m, err := cluster.New(opts.Manager)
	if err != nil {
		t.Fatalf("e2etest: %v", err)
	}
	spec := opts.Spec
	if spec.ID == "" {
		spec.ID = clusterID(t.Name())
	}
	c, r, err := create(t.Context(), m, spec, opts)
	if err != nil {
		m.Close()
		t.Fatalf("e2etest: %v", err)
	}
	t.Cleanup(func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), opts.cleanupTimeout())
		defer cancel()
		defer m.Close()
		if t.Failed() {
			saveLogs(ctx, t, c)
		}
		kept, err := finish(ctx, m, c, r, opts.retained())
		if kept != "" {
			t.Log(kept)
		}
		if err != nil {
			t.Error(err)
		}
	})
	return c
}

// create makes the cluster and, unless retained or NoReaper, its reaper;
// a reaper that does not start destroys the cluster again.
func create(ctx context.Context, m *cluster.Manager, spec cluster.Spec, opts Options) (*cluster.Cluster, *exec.Cmd, error) {
	c, err := m.Create(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	if opts.NoReaper || opts.retained() {
		return c, nil, nil
	}
	r, err := startReaper(m, opts.Manager.PluginDirs, c)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.cleanupTimeout())
		defer cancel()
		if derr := c.Destroy(dctx); derr != nil {
			return nil, nil, fmt.Errorf("%w; destroying cluster %s also failed: %v", err, c.ID, derr)
		}
		return nil, nil, err
	}
	return c, r, nil
}

// finish destroys the cluster and stops its reaper, or, when retain,
// keeps the cluster and returns a line saying how to destroy it. A reaper
// whose cluster could not be destroyed is left running: it tries again
// when the test binary exits.
func finish(ctx context.Context, m *cluster.Manager, c *cluster.Cluster, r *exec.Cmd, retain bool) (kept string, err error) {
	if retain {
		_ = c.Close()
		return fmt.Sprintf("e2etest: kept cluster %s (-%s): E2E_HOME=%s e2e destroy -c %s", c.ID, RetainFlag, m.Home(), c.ID), nil
	}
	if err := c.Destroy(ctx); err != nil {
		if r != nil {
			_ = r.Process.Release()
		}
		return "", fmt.Errorf("e2etest: %w", err)
	}
	if r != nil {
		_ = r.Process.Signal(syscall.SIGTERM)
		_ = r.Wait()
	}
	return "", nil
}

// clusterID makes a cluster id from a test's name: its letters and digits
// in lower case, other runs of characters as one '-', cut to fit, and
// random letters, such as "testlogs-fail-k3x9q2".
func clusterID(testName string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 28 {
			break
		}
	}
	name := strings.TrimRight(b.String(), "-")
	if name == "" {
		name = "test"
	}
	return name + "-" + strings.ToLower(rand.Text()[:6])
}

package e2etest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/reaper"
)

// reaperEnv carries a reaper's configuration (JSON) to a copy of the test
// binary started as a reaper; the package's init sees it and runs the
// reaper instead of the tests.
const reaperEnv = "E2E_TEST_REAPER"

// startReaper starts a copy of the running test binary as the reaper of
// cluster c: in a session of its own, it destroys c through m's state
// directory and plugins once this process is gone, and exits once c is
// destroyed otherwise.
func startReaper(m *cluster.Manager, pluginDirs []string, c *cluster.Cluster) (*exec.Cmd, error) {
	self, err := reaper.Identify(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	cfg, err := json.Marshal(reaper.Config{Watch: self, Clusters: []reaper.Target{{ID: c.ID, UID: c.UID}},
		Home: m.Home(), PluginDirs: pluginDirs})
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	// -test.run matches nothing, should the binary not be this package's.
	return reaper.Spawn(exe, []string{"-test.run=^$"}, append(os.Environ(), reaperEnv+"="+string(cfg)))
}

// reaperMain is a reaper's whole life: it watches, destroys if need be,
// and returns the process's exit code. It ends early on SIGTERM (the
// test's cleanup destroyed the cluster) or SIGINT.
func reaperMain(encoded string) int {
	_ = os.Unsetenv(reaperEnv) // not for the plugins it starts
	var cfg reaper.Config
	if err := json.Unmarshal([]byte(encoded), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "e2etest reaper: %s: %v\n", reaperEnv, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	m, err := cluster.New(cluster.Options{Home: cfg.Home, PluginDirs: cfg.PluginDirs})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2etest reaper: %v\n", err)
		return 1
	}
	defer m.Close()
	if _, err := reaper.Run(ctx, m, cfg); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "e2etest reaper: %v\n", err)
		return 1
	}
	return 0
}

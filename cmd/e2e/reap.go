package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/reaper"
)

// ReapCmd is the reaper `e2e create --reap-with-pid` starts: it waits for
// a process to end, then destroys the clusters it was given. Hidden: users
// ask for a reaper with --reap-with-pid.
type ReapCmd struct {
	PID       int      `name:"pid" required:"" help:"Process to watch."`
	PIDStart  string   `name:"pid-start" help:"The process's start time (clock ticks since boot, /proc/PID/stat), so a later process with the same pid is not taken for it."`
	ClusterID []string `name:"cluster-id" short:"c" required:"" help:"Cluster to destroy once the process has ended (repeatable)." sep:"none"`
}

func (c *ReapCmd) Run(e *env) error {
	targets, err := reaper.Targets(e.manager, c.ClusterID)
	if err != nil {
		return err
	}
	watch := reaper.Process{PID: c.PID, Start: c.PIDStart}
	if watch.Start == "" {
		if p, err := reaper.Identify(c.PID); err == nil {
			watch = p
		}
	}
	e.now("watching process %d", c.PID)
	out, err := reaper.Run(e.ctx, e.manager, reaper.Config{Watch: watch, Clusters: targets})
	for _, id := range out.Destroyed {
		e.say("destroyed %s (process %d ended)", id, c.PID)
		fmt.Fprintln(e.stdout, id)
	}
	return err
}

// reapTarget checks --reap-with-pid before anything is made: the process
// must run. It returns the zero Process when the flag is not given.
func (c *CreateCmd) reapTarget() (reaper.Process, error) {
	if c.ReapWithPID == nil {
		return reaper.Process{}, nil
	}
	pid := *c.ReapWithPID
	if pid <= 0 {
		return reaper.Process{}, invalid(fmt.Errorf("--reap-with-pid %d is not a process id: give the id of a running process (1 or more)", pid))
	}
	p, err := reaper.Identify(pid)
	if err != nil {
		return p, invalid(fmt.Errorf("--reap-with-pid %d: %v: give the id of a running process", pid, err))
	}
	return p, nil
}

// startReaper starts `e2e reap` for a cluster just made, in a session of
// its own. When it cannot start, the cluster is destroyed (unless
// --retain): a cluster the caller asked to be reaped must not outlive it
// unguarded.
func startReaper(e *env, spec cluster.Spec, watch reaper.Process, cl *cluster.Cluster) error {
	err := spawnReaper(e, watch, cl)
	if err == nil {
		e.info(cl.ID, "reaper started: the cluster is destroyed once process %d ends", watch.PID)
		return nil
	}
	if spec.Retain {
		return fmt.Errorf("cluster %s was created, but %w", cl.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), reapCleanupTimeout)
	defer cancel()
	if derr := cl.Destroy(ctx); derr != nil {
		return fmt.Errorf("%w; destroying cluster %s also failed: %v", err, cl.ID, derr)
	}
	return fmt.Errorf("%w; cluster %s was destroyed", err, cl.ID)
}

// spawnReaper starts this executable as `e2e reap`, with the state
// directory and plugin directories of this e2e, and lets it go.
func spawnReaper(e *env, watch reaper.Process, cl *cluster.Cluster) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("starting the reaper: %w", err)
	}
	args := reaper.Args(reaper.Config{Watch: watch, Clusters: []reaper.Target{{ID: cl.ID, UID: cl.UID}}, PluginDirs: e.pluginDirs})
	cmd, err := reaper.Spawn(exe, args, append(os.Environ(), "E2E_HOME="+e.manager.Home()))
	if err != nil {
		return err
	}
	return cmd.Process.Release()
}

// reapCleanupTimeout bounds destroying a cluster whose reaper did not start.
const reapCleanupTimeout = 5 * time.Minute

// Package reaper destroys the clusters of a process once that process is
// gone, however it ended (SIGKILL included), as testcontainers' Ryuk removes
// a test's containers. A reaper is a process of its own, in a session of its
// own (Spawn), so that neither a signal to the watched process's group nor
// a terminal's Ctrl-C reaches it. It polls the watched process; when the
// process has ended it destroys the clusters it was given through
// cluster.Manager.Destroy, the path `e2e destroy` takes, and exits. It also
// exits, destroying nothing, once every one of its clusters is destroyed
// (or recreated: another creation of the same id is not its to destroy), so
// that no reaper outlives its clusters for long.
package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/state"
)

// DefaultInterval is how often a reaper looks at the watched process and
// at the records of its clusters.
const DefaultInterval = 500 * time.Millisecond

// Process names one process across pid reuse: its pid and its start time
// (clock ticks since boot, from /proc/PID/stat).
type Process struct {
	PID int `json:"pid"`
	// Start is the process's start time; empty when the system has no
	// /proc, where only the pid is checked.
	Start string `json:"start,omitempty"`
}

// Identify returns the process pid is now. It fails, saying so, when no
// process has that pid (or it has ended).
func Identify(pid int) (Process, error) {
	if pid <= 0 {
		return Process{}, fmt.Errorf("%d is not a process id", pid)
	}
	st, err := proc.Stat(pid)
	switch {
	case err == nil && st.Ended():
		return Process{}, fmt.Errorf("process %d has ended", pid)
	case err == nil:
		return Process{PID: pid, Start: st.Start}, nil
	case !hasProc():
		if !exists(pid) {
			return Process{}, fmt.Errorf("no process has id %d", pid)
		}
		return Process{PID: pid}, nil
	}
	return Process{}, fmt.Errorf("no process has id %d", pid)
}

// Alive reports whether the process still runs: a process with its pid
// exists, has not ended (a zombie has, though its parent has not collected
// it yet) and started when p did (so a later process given the same pid is
// not taken for it).
func (p Process) Alive() bool {
	st, err := proc.Stat(p.PID)
	if err != nil {
		if !hasProc() {
			return exists(p.PID)
		}
		return false
	}
	return !st.Ended() && (p.Start == "" || st.Start == p.Start)
}

// hasProc reports whether the system has a /proc to read processes from.
func hasProc() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// Target is a cluster a reaper destroys: its id and the uid of the
// creation (a cluster made again under the same id is another one).
type Target struct {
	ID  string `json:"id"`
	UID string `json:"uid"`
}

// Config is what a reaper watches and what it destroys.
type Config struct {
	// Watch is the process whose end triggers the reaper.
	Watch Process `json:"watch"`
	// Clusters are destroyed once Watch has ended.
	Clusters []Target `json:"clusters"`
	// Home is the state directory (E2E_HOME) the clusters are recorded
	// in; PluginDirs are searched first for plugins (cluster.Options).
	Home       string   `json:"home"`
	PluginDirs []string `json:"plugin_dirs,omitempty"`
	// Interval is how often the reaper looks; zero means DefaultInterval.
	Interval time.Duration `json:"interval,omitempty"`
}

// Targets returns the clusters ids name with the uid of their records in
// m's state directory: what a reaper started now destroys. An id without a
// record is an error.
func Targets(m *cluster.Manager, ids []string) ([]Target, error) {
	store, err := state.Open(m.Home())
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(ids))
	for _, id := range ids {
		meta, err := store.Load(id)
		if errors.Is(err, state.ErrNotFound) {
			return nil, &cluster.InvalidError{Err: fmt.Errorf("%w %q (see `e2e list`)", cluster.ErrUnknownCluster, id)}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Target{ID: id, UID: meta.UID})
	}
	return out, nil
}

// Outcome is what a reaper did.
type Outcome struct {
	// Destroyed are the clusters it destroyed, after the watched process
	// ended; empty when they were all destroyed otherwise first.
	Destroyed []string
	// WatchedEnded says the watched process ended.
	WatchedEnded bool
}

// Run watches cfg.Watch until it ends or until none of cfg.Clusters is
// recorded any more (each destroyed, or recreated under a new uid). When
// the process ended first, it destroys every cluster still recorded with
// its uid, through m (the manager of cfg.Home), and returns what it
// destroyed and every failure, joined. It returns ctx's error when ctx is
// done first.
func Run(ctx context.Context, m *cluster.Manager, cfg Config) (Outcome, error) {
	store, err := state.Open(m.Home())
	if err != nil {
		return Outcome{}, err
	}
	interval := cfg.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	// live returns the clusters still recorded as the reaper was given them.
	live := func() []Target {
		var out []Target
		for _, t := range cfg.Clusters {
			if meta, err := store.Load(t.ID); err == nil && (t.UID == "" || meta.UID == t.UID) {
				out = append(out, t)
			}
		}
		return out
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		left := live()
		if len(left) == 0 {
			return Outcome{}, nil
		}
		if !cfg.Watch.Alive() {
			return destroy(ctx, m, live())
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// destroy destroys the targets, each even when another fails.
func destroy(ctx context.Context, m *cluster.Manager, targets []Target) (Outcome, error) {
	out := Outcome{WatchedEnded: true}
	var errs []error
	for _, t := range targets {
		if err := m.Destroy(ctx, t.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		out.Destroyed = append(out.Destroyed, t.ID)
	}
	return out, errors.Join(errs...)
}

// Args are the command-line arguments of `e2e reap` for cfg (plugin
// directories and interval included; the state directory travels as
// E2E_HOME).
func Args(cfg Config) []string {
	args := []string{"reap", "--pid", strconv.Itoa(cfg.Watch.PID)}
	if cfg.Watch.Start != "" {
		args = append(args, "--pid-start", cfg.Watch.Start)
	}
	for _, t := range cfg.Clusters {
		args = append(args, "-c", t.ID)
	}
	for _, d := range cfg.PluginDirs {
		args = append(args, "--plugin-dir", d)
	}
	return args
}

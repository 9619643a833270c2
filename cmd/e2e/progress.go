package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/cluster"
)

// progress shows events of long calls on stderr: on a terminal one live
// line per node (see live), elsewhere (CI) one line per step. Each step is
// named once, however its events interleave (the nodes of a cluster start
// and boot in parallel). With -v it also says how long each step took;
// with -vv it shows the plugins' debug events.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	verbose int
	// quiet (-q) drops progress and info events: warnings and errors stay.
	quiet bool
	now   func() time.Time
	// view draws the lines on a terminal while a command works; nil
	// before the first event and after finish.
	view  *live
	steps map[stepKey]*step
	order []stepKey
}

type stepKey struct{ cluster, name string }

// step is what progress knows of one step: when its first event came, its
// last count, and whether it has ended (its count reached its total, or
// the command is over).
type step struct {
	start          time.Time
	current, total int64
	ended          bool
}

func newProgress(w io.Writer, tty bool, verbose int) *progress {
	return &progress{w: w, tty: tty, verbose: verbose, now: time.Now, steps: map[stepKey]*step{}}
}

func (p *progress) event(ev cluster.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quiet && ev.Level != "warn" && ev.Level != "error" {
		return
	}
	if ev.Level != "" {
		if ev.Level == "debug" && p.verbose < 2 {
			return
		}
		prefix := ""
		if ev.Level == "warn" || ev.Level == "error" {
			prefix = ev.Level + ": "
		}
		p.printlnLocked(fmt.Sprintf("[%s] %s%s", ev.Cluster, prefix, ev.Message))
		return
	}
	key := stepKey{ev.Cluster, ev.Step}
	st, seen := p.steps[key]
	if !seen {
		// A step without counts ends when the next step of its cluster
		// starts: those steps follow each other.
		for _, k := range p.order {
			if o := p.steps[k]; k.cluster == ev.Cluster && !o.ended && o.total == 0 {
				p.endStepLocked(k, o)
			}
		}
		st = &step{start: p.now()}
		p.steps[key] = st
		p.order = append(p.order, key)
		if !p.tty {
			fmt.Fprintf(p.w, "[%s] %s\n", ev.Cluster, ev.Step)
		}
	}
	if ev.Total > 0 {
		st.current, st.total = ev.Current, ev.Total
	}
	if p.tty {
		if p.view == nil {
			p.view = newLive(p.w)
		}
		p.view.event(ev)
	}
	if !st.ended && st.total > 0 && st.current >= st.total {
		p.endStepLocked(key, st)
	}
}

// endStepLocked marks a step ended and, with -v, says how long it took.
func (p *progress) endStepLocked(k stepKey, st *step) {
	st.ended = true
	if p.verbose < 1 {
		return
	}
	count := ""
	if st.total > 0 && st.current >= st.total {
		count = fmt.Sprintf(" (%d/%d)", st.current, st.total)
	}
	p.printlnLocked(fmt.Sprintf("[%s] %s: done in %s%s", k.cluster, k.name, p.now().Sub(st.start).Round(time.Millisecond), count))
}

// finish ends the output of a command: the steps still open ended with it
// when it succeeded (with -v their times are said); a failed command's
// open steps did not end, and nothing more is said of them.
func (p *progress) finish(succeeded bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if succeeded {
		for _, k := range p.order {
			if st := p.steps[k]; !st.ended {
				p.endStepLocked(k, st)
			}
		}
	}
	p.endLineLocked()
}

// endLineLocked ends the live lines, as they stand, so that other output
// comes after them.
func (p *progress) endLineLocked() {
	if p.view != nil {
		p.view.stop()
		p.view = nil
	}
}

// printlnLocked prints a line: above the live lines while there are.
func (p *progress) printlnLocked(s string) {
	if p.view != nil {
		p.view.println(s)
		return
	}
	fmt.Fprintln(p.w, s)
}

// live reports whether progress is drawn live, on a terminal.
func (p *progress) live() bool { return p.tty && !p.quiet }

// transfer adds a bar for one node's transfer (bytes and rate; see live)
// and returns what to call with its progress. Only when live().
func (p *progress) transfer(clusterID, node, verb string) func(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.view == nil {
		p.view = newLive(p.w)
	}
	return p.view.transfer(clusterID, node, verb)
}

// info writes an info line about a cluster with -v, as progress writes
// the plugins' info events.
func (e *env) info(cluster, format string, args ...any) {
	if e.verbose > 0 {
		e.progress.finish(true)
		fmt.Fprintf(e.stderr, "[%s] %s\n", cluster, fmt.Sprintf(format, args...))
	}
}

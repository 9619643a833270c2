package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/e2e-tool/e2e/cluster"
)

// progress shows events of long calls on stderr: on a terminal one line
// that updates in place, elsewhere (CI) one line per step.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	lastStep string
	inPlace  bool
}

func newProgress(w io.Writer, tty bool) *progress { return &progress{w: w, tty: tty} }

func (p *progress) event(ev cluster.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Level != "" {
		if ev.Level == "debug" {
			return
		}
		p.endLineLocked()
		prefix := ""
		if ev.Level == "warn" || ev.Level == "error" {
			prefix = ev.Level + ": "
		}
		fmt.Fprintf(p.w, "[%s] %s%s\n", ev.Cluster, prefix, ev.Message)
		return
	}
	count := ""
	if ev.Total > 0 {
		count = fmt.Sprintf(" (%d/%d)", ev.Current, ev.Total)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K[%s] %s%s %s", ev.Cluster, ev.Step, count, ev.Message)
		p.inPlace = true
		return
	}
	if ev.Step != p.lastStep {
		p.lastStep = ev.Step
		fmt.Fprintf(p.w, "[%s] %s\n", ev.Cluster, ev.Step)
	}
}

// endLine ends an in-place progress line so that other output starts on a
// line of its own.
func (p *progress) endLine() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLineLocked()
}

func (p *progress) endLineLocked() {
	if p.inPlace {
		fmt.Fprintln(p.w)
		p.inPlace = false
	}
}

package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// live is progress on a terminal: one line per node (and one per step
// that is no node's), each updated in place, and a bar with bytes and
// rate per node for file transfers, drawn by mpb. Other lines (logs) are
// printed above them.
type live struct {
	p     *mpb.Progress
	mu    sync.Mutex
	lines map[string]*liveLine
	bars  []*mpb.Bar
}

// liveLine is the text of one line; the decorator reads it at each
// refresh.
type liveLine struct {
	mu   sync.Mutex
	text string
}

func (l *liveLine) set(s string) {
	l.mu.Lock()
	l.text = s
	l.mu.Unlock()
}

func (l *liveLine) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text
}

// newLive draws on w, a terminal; opts are added to mpb's (a test gives
// mpb.WithAutoRefresh to draw on a buffer).
func newLive(w io.Writer, opts ...mpb.ContainerOption) *live {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(40)}, opts...)
	return &live{p: mpb.New(opts...), lines: map[string]*liveLine{}}
}

// subject is what an event's line is about: its node when it has one
// (an installer's per-node step, or a plugin's per-node count whose
// message names the node), else its step.
func subject(ev cluster.Event) (key, text string) {
	switch {
	case ev.Node != "":
		step := strings.TrimSuffix(ev.Step, " "+ev.Node)
		return ev.Cluster + "\x00" + ev.Node, strings.TrimSpace(fmt.Sprintf("[%s] %s: %s %s", ev.Cluster, ev.Node, step, ev.Message))
	case ev.Total > 0 && ev.Message != "":
		return ev.Cluster + "\x00" + ev.Message, fmt.Sprintf("[%s] %s: %s", ev.Cluster, ev.Message, ev.Step)
	}
	count := ""
	if ev.Total > 0 {
		count = fmt.Sprintf(" (%d/%d)", ev.Current, ev.Total)
	}
	return ev.Cluster + "\x00step\x00" + ev.Step, strings.TrimSpace(fmt.Sprintf("[%s] %s%s %s", ev.Cluster, ev.Step, count, ev.Message))
}

// event shows a progress event on its line, adding the line when it is
// new.
func (l *live) event(ev cluster.Event) {
	key, text := subject(ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	line, ok := l.lines[key]
	if !ok {
		line = &liveLine{}
		l.lines[key] = line
		bar := l.p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return line.get() })))
		l.bars = append(l.bars, bar)
	}
	line.set(text)
}

// transfer adds a bar for one node's transfer and returns what to call
// with its progress (bytes done and in all). The rate is the average since
// the bar was added, up to the last progress: mpb's AverageSpeed computes
// it only while the bar is not complete, so a transfer that ended before
// the first refresh would show none.
func (l *live) transfer(clusterID, node, verb string) func(done, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &rate{start: time.Now()}
	bar := l.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("[%s] %s: %s ", clusterID, node, verb))),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name("  "), decor.Any(r.String)))
	l.bars = append(l.bars, bar)
	var mu sync.Mutex
	var last int64 = -1
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		r.set(done)
		if total != last {
			bar.SetTotal(total, false)
			last = total
		}
		bar.SetCurrent(done)
	}
}

// rate is a transfer's average rate. Its own lock is never held while
// calling mpb, which calls String from its render loop.
type rate struct {
	mu    sync.Mutex
	start time.Time
	done  int64
	at    time.Time // of the last progress; zero before the first
}

func (r *rate) set(done int64) {
	r.mu.Lock()
	r.done, r.at = done, time.Now()
	r.mu.Unlock()
}

// String is the rate as "12.5 MiB/s", or nothing before any progress.
func (r *rate) String(decor.Statistics) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at.IsZero() {
		return ""
	}
	d := max(r.at.Sub(r.start), time.Microsecond)
	return fmt.Sprintf("% .1f", decor.FmtAsSpeed(decor.SizeB1024(math.Round(float64(r.done)/d.Seconds()))))
}

// println prints a line above the live lines.
func (l *live) println(s string) { _, _ = l.p.Write([]byte(s + "\n")) }

// stop ends every line as it stands and waits until they are drawn.
func (l *live) stop() {
	l.mu.Lock()
	for _, b := range l.bars {
		b.SetTotal(-1, true)
	}
	l.mu.Unlock()
	l.p.Wait()
}

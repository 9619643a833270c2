// Package lastlines keeps the last lines a program wrote, so that an error
// can quote them: a failed installer step, a plugin that crashed, a tool of
// the node image build.
package lastlines

import (
	"bytes"
	"strings"
	"sync"
)

// maxLine bounds a line (the end of a longer one is kept), so output
// without newlines cannot grow the Writer without end.
const maxLine = 4096

// Writer keeps the last complete lines written to it, trimmed of white
// space, blank ones dropped, and the line still being written. It is safe
// for concurrent use (a program's stdout and stderr may share one). Its
// zero value keeps 8 lines.
type Writer struct {
	// Max is how many complete lines are kept; 0 means 8.
	Max int
	// Line, if set, rewrites each line before it is kept; "" drops it.
	Line func(line string) string

	mu    sync.Mutex
	lines []string
	cur   []byte
}

// Write never fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.cur = keepEnd(append(w.cur, p...))
			break
		}
		w.cur = keepEnd(append(w.cur, p[:i]...))
		if line := w.clean(w.cur); line != "" {
			w.lines = append(w.lines, line)
			if keep := w.keep(); len(w.lines) > keep {
				w.lines = append(w.lines[:0], w.lines[len(w.lines)-keep:]...)
			}
		}
		w.cur = w.cur[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Last returns up to n of the last lines, the one still being written
// included.
func (w *Writer) Last(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := w.lines
	if line := w.clean(w.cur); line != "" {
		lines = append(lines[:len(lines):len(lines)], line)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return append([]string(nil), lines...)
}

func (w *Writer) keep() int {
	if w.Max <= 0 {
		return 8
	}
	return w.Max
}

func (w *Writer) clean(b []byte) string {
	line := strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
	if line != "" && w.Line != nil {
		line = w.Line(line)
	}
	return line
}

// keepEnd cuts b to its last maxLine bytes, in place.
func keepEnd(b []byte) []byte {
	if len(b) <= maxLine {
		return b
	}
	return append(b[:0], b[len(b)-maxLine:]...)
}

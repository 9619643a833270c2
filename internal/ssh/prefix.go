package ssh

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"unicode/utf8"
)

const (
	// MaxLine is the longest line a PrefixWriter passes whole, in bytes
	// (without its newline). A longer line is cut into pieces of at most
	// MaxLine bytes (never inside a UTF-8 character), each but the last
	// ending with LineContinues, each on a line of its own with the
	// prefix: nothing is dropped, and memory stays bounded.
	MaxLine = 1 << 20
	// LineContinues ends each piece of a cut line but the last.
	LineContinues = " [e2e: line continues]"
	// flushAt is how many bytes of whole lines a writer gathers before
	// writing them out (in one Write, holding the shared lock).
	flushAt = 64 << 10
)

// prefixWriter prefixes each line; see NewPrefixWriter.
type prefixWriter struct {
	w      io.Writer
	prefix []byte
	mu     *sync.Mutex // shared by all writers to w

	bufMu  sync.Mutex // guards buf, out and closed
	buf    []byte     // the current line so far (< MaxLine bytes)
	out    []byte     // whole lines, prefixed, not written yet
	closed bool
}

// NewPrefixWriter returns a line-buffered writer that writes each line to w
// as prefix+line+"\n", whole: lines are gathered and written holding mu,
// so writers sharing mu and w never interleave within a line. Bytes pass
// untouched (UTF-8 or not). A line longer than MaxLine is cut into
// pieces, each but the last marked with LineContinues. Close writes a
// last line that has no newline (adding one). A nil mu serialises only
// this writer's own lines.
func NewPrefixWriter(w io.Writer, prefix string, mu *sync.Mutex) io.WriteCloser {
	if mu == nil {
		mu = new(sync.Mutex)
	}
	return &prefixWriter{w: w, prefix: []byte(prefix), mu: mu}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.bufMu.Lock()
	defer p.bufMu.Unlock()
	if p.closed {
		return 0, errors.New("write to a closed prefix writer")
	}
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if room := MaxLine - len(p.buf); len(part) > room {
			// Too long: fill the line to MaxLine and cut it there.
			p.buf = append(p.buf, part[:room]...)
			b = b[room:]
			cut := cutPoint(p.buf)
			p.line(p.buf[:cut], true)
			p.buf = p.buf[:copy(p.buf, p.buf[cut:])]
		} else if i < 0 {
			p.buf = append(p.buf, part...)
			b = nil
		} else {
			if len(p.buf) == 0 {
				p.line(part, false)
			} else {
				p.line(append(p.buf, part...), false)
				p.buf = p.buf[:0]
			}
			b = b[i+1:]
		}
		if len(p.out) >= flushAt {
			if err := p.flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := p.flush(); err != nil {
		return 0, err
	}
	return n, nil
}

// line adds one prefixed line (a piece of a cut one when cut) to out.
func (p *prefixWriter) line(b []byte, cut bool) {
	p.out = append(p.out, p.prefix...)
	p.out = append(p.out, b...)
	if cut {
		p.out = append(p.out, LineContinues...)
	}
	p.out = append(p.out, '\n')
}

// flush writes out's whole lines in one Write, holding the shared lock.
func (p *prefixWriter) flush() error {
	if len(p.out) == 0 {
		return nil
	}
	p.mu.Lock()
	_, err := p.w.Write(p.out)
	p.mu.Unlock()
	if cap(p.out) > 2*flushAt+MaxLine {
		p.out = nil // after a huge batch, do not keep its memory
	} else {
		p.out = p.out[:0]
	}
	return err
}

// cutPoint is where to cut a full line: before a UTF-8 character that its
// last bytes begin but do not complete; anywhere in bytes that are not
// UTF-8.
func cutPoint(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if b[i] >= utf8.RuneSelf && !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// Close writes the last line if it has no newline yet.
func (p *prefixWriter) Close() error {
	p.bufMu.Lock()
	defer p.bufMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if len(p.buf) > 0 {
		p.line(p.buf, false)
		p.buf = nil
	}
	return p.flush()
}

package ssh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
)

// FanOut runs fn for i in 0..n-1, at most limit at once (all at once when
// limit <= 0), waits for all of them and returns their errors by index. Once
// ctx has ended no new fn starts; those not started get ctx's error.
func FanOut(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	if limit <= 0 || limit > n {
		limit = n
	}
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		// A free slot and an ended ctx may both be ready: ctx wins.
		if err := ctx.Err(); err != nil {
			for j := i; j < n; j++ {
				errs[j] = err
			}
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[i] = fn(ctx, i)
		})
	}
	wg.Wait()
	return errs
}

// maxLine is how much of a line without a newline a PrefixWriter holds
// before it writes it out anyway (progress bars redrawn with \r, binary).
const maxLine = 64 * 1024

// prefixWriter prefixes each line; see NewPrefixWriter.
type prefixWriter struct {
	w      io.Writer
	prefix []byte
	mu     *sync.Mutex // shared by all writers to w

	bufMu  sync.Mutex // guards buf and closed
	buf    []byte
	closed bool
}

// NewPrefixWriter returns a line-buffered writer: each complete line is
// written to w as prefix+line, holding mu, so writers sharing mu and w never
// interleave within a line. Close writes a last partial line (with a
// newline). A nil mu serialises only this writer's own lines.
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
	p.buf = append(p.buf, b...)
	end := bytes.LastIndexByte(p.buf, '\n') + 1
	if end == 0 && len(p.buf) >= maxLine {
		p.buf = append(p.buf, '\n')
		end = len(p.buf)
	}
	if end == 0 {
		return len(b), nil
	}
	err := p.emit(p.buf[:end])
	p.buf = append(p.buf[:0], p.buf[end:]...)
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// emit writes complete lines, each with the prefix, in one Write under mu.
func (p *prefixWriter) emit(lines []byte) error {
	out := make([]byte, 0, len(lines)+len(p.prefix)*(bytes.Count(lines, []byte{'\n'})))
	for line := range bytes.Lines(lines) {
		out = append(out, p.prefix...)
		out = append(out, line...)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.w.Write(out)
	return err
}

func (p *prefixWriter) Close() error {
	p.bufMu.Lock()
	defer p.bufMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if len(p.buf) == 0 {
		return nil
	}
	err := p.emit(append(p.buf, '\n'))
	p.buf = nil
	return err
}

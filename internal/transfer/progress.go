package transfer

import (
	"context"
	"io"
	"sync"
)

// Progress is told the bytes moved so far and the total of a transfer. It
// is never called concurrently for one transfer. It may be nil.
type Progress func(done, total int64)

// Tracker adds up the progress of the files of one transfer; it is safe
// for concurrent use.
type Tracker struct {
	mu          sync.Mutex
	done, total int64
	fn          Progress
}

// NewTracker reports 0 of total to fn (which may be nil) and returns a
// Tracker that reports every later step.
func NewTracker(total int64, fn Progress) *Tracker {
	t := &Tracker{total: total, fn: fn}
	if fn != nil {
		fn(0, total)
	}
	return t
}

// Add counts n more bytes.
func (t *Tracker) Add(n int) {
	if t == nil || t.fn == nil || n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done += int64(n)
	t.fn(t.done, t.total)
}

// ProgressReader counts what is read from R and stops at Ctx's end.
// Bytes, when set, is R's size: sftp.File.ReadFrom needs it (through
// Size) to split a file into concurrent writes.
type ProgressReader struct {
	Ctx   context.Context
	R     io.Reader
	T     *Tracker
	Bytes int64
}

// Read reads from R and counts what it read.
func (r *ProgressReader) Read(b []byte) (int, error) {
	if err := r.Ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.R.Read(b)
	r.T.Add(n)
	return n, err
}

// Size is Bytes.
func (r *ProgressReader) Size() int64 { return r.Bytes }

// ProgressWriter counts what is written to W and stops at Ctx's end.
type ProgressWriter struct {
	Ctx context.Context
	W   io.Writer
	T   *Tracker
}

// Write writes to W and counts what it wrote.
func (w *ProgressWriter) Write(b []byte) (int, error) {
	if err := w.Ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.W.Write(b)
	w.T.Add(n)
	return n, err
}

package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFanOut(t *testing.T) {
	t.Run("limit respected, errors by index", func(t *testing.T) {
		var running, peak atomic.Int32
		errs := FanOut(t.Context(), 20, 3, func(ctx context.Context, i int) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			if i%3 == 0 {
				return fmt.Errorf("node %d failed", i)
			}
			return nil
		})
		if p := peak.Load(); p != 3 {
			t.Errorf("at most %d ran at once, want 3", p)
		}
		if len(errs) != 20 {
			t.Fatalf("%d errors, want 20", len(errs))
		}
		for i, err := range errs {
			want := ""
			if i%3 == 0 {
				want = fmt.Sprintf("node %d failed", i)
			}
			if got := fmt.Sprint(err); (err == nil) != (want == "") || (err != nil && got != want) {
				t.Errorf("errs[%d] = %v, want %q", i, err, want)
			}
		}
	})
	t.Run("no limit runs all at once", func(t *testing.T) {
		const n = 12
		var wg sync.WaitGroup
		wg.Add(n)
		all := make(chan struct{})
		go func() {
			wg.Wait()
			close(all)
		}()
		errs := FanOut(t.Context(), n, 0, func(ctx context.Context, i int) error {
			wg.Done()
			select {
			case <-all: // every fn is running
				return nil
			case <-time.After(5 * time.Second):
				return errors.New("not all ran at once")
			}
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("errs[%d] = %v", i, err)
			}
		}
	})
	t.Run("cancelled: nothing new starts", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var started atomic.Int32
		errs := FanOut(ctx, 10, 2, func(ctx context.Context, i int) error {
			started.Add(1)
			if i == 1 {
				cancel()
			}
			<-ctx.Done()
			return ctx.Err()
		})
		if s := started.Load(); s != 2 {
			t.Errorf("%d started, want 2", s)
		}
		for i, err := range errs {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("errs[%d] = %v, want context.Canceled", i, err)
			}
		}
	})
	t.Run("zero", func(t *testing.T) {
		if errs := FanOut(t.Context(), 0, 4, nil); len(errs) != 0 {
			t.Errorf("got %v", errs)
		}
	})
}

// TestPrefixWritersConcurrent: writers sharing an output and a mutex, each
// writing its lines in odd-sized pieces, never mix within a line.
func TestPrefixWritersConcurrent(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	const writers, lines = 8, 300
	var wg sync.WaitGroup
	for n := range writers {
		wg.Go(func() {
			w := NewPrefixWriter(&out, fmt.Sprintf("[node_%d] ", n), &mu)
			var all strings.Builder
			for l := range lines {
				fmt.Fprintf(&all, "node %d line %d %s\n", n, l, strings.Repeat("x", l%50))
			}
			data := []byte(all.String())
			for i, size := 0, 1; i < len(data); size = size%37 + 1 {
				end := min(i+size, len(data))
				w.Write(data[i:end])
				i = end
			}
			w.Close()
		})
	}
	wg.Wait()
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "[node_%d]", &n); err != nil || n < 0 || n >= writers {
			t.Fatalf("garbled line %q", line)
		}
		want := fmt.Sprintf("[node_%d] node %d line %d %s", n, n, next[n], strings.Repeat("x", next[n]%50))
		if line != want {
			t.Fatalf("line %q, want %q", line, want)
		}
		next[n]++
	}
	for n, got := range next {
		if got != lines {
			t.Errorf("writer %d: %d lines, want %d", n, got, lines)
		}
	}
}

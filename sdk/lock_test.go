package sdk

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestLockFile: a second holder waits for the first, and gives up with its
// context; once released, the lock can be taken again.
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ports.lock")
	unlock, err := LockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := LockFile(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second LockFile while held: %v, want an error wrapping context.DeadlineExceeded", err)
	}
	got := make(chan error, 1)
	go func() {
		unlock2, err := LockFile(t.Context(), path)
		if err == nil {
			unlock2()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("LockFile after the first holder let go: %v", err)
	}
}

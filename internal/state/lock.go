package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// fileLock is an exclusive lock on a lock file, held while the file is open.
type fileLock struct {
	path string
	f    *os.File
}

// acquireLock takes the lock on path, polling until ctx is done. Lock files may
// be deleted by their holder (Remove, Abort), so after locking we check that
// the file we hold is still the one at path; otherwise a waiter that opened
// the deleted file and a newcomer that created a new one could both "hold" it.
func acquireLock(ctx context.Context, path string) (*fileLock, error) {
	delay := 5 * time.Millisecond
	for {
		l, err := tryLockPath(path)
		if err != nil {
			return nil, err
		}
		if l != nil {
			return l, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// tryLockPath returns nil, nil if another holder has the lock.
func tryLockPath(path string) (*fileLock, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open lock file: %w", err)
		}
		l, retry, err := lockOpened(f, path)
		if !retry {
			return l, err
		}
	}
}

// lockOpened tries to lock f, which was opened from path, and closes it unless
// it returns the lock. retry reports that path no longer names f's file (it
// was deleted or replaced since f was opened), so the lock must be taken anew.
func lockOpened(f *os.File, path string) (l *fileLock, retry bool, err error) {
	ok, err := tryLock(f)
	if err != nil || !ok {
		f.Close()
		return nil, false, err
	}
	held, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("stat lock file: %w", err)
	}
	current, err := os.Stat(path)
	if err == nil && os.SameFile(held, current) {
		return &fileLock{path: path, f: f}, false, nil
	}
	f.Close()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("stat lock file: %w", err)
	}
	return nil, true, nil
}

// unlock releases the lock; closing the descriptor drops the flock.
func (l *fileLock) unlock() {
	l.f.Close()
}

// remove deletes the lock file while the lock is still held (see acquireLock).
func (l *fileLock) remove() error {
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove lock file: %w", err)
	}
	return nil
}

package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gofrs/flock"
)

// fileLock is an exclusive flock on a lock file (gofrs/flock). flock locks
// belong to the open file description, so they exclude other processes and
// other descriptors of the same process alike, and the kernel drops them if
// the process dies.
type fileLock struct {
	path string
	fl   *flock.Flock
}

// acquireLock takes the lock on path, polling until ctx is done (trying at
// least once, even if ctx is already done). Lock files may be deleted by
// their holder (Remove, Abort), so after locking we check that the file we
// hold is still the one at path; otherwise a waiter that opened the deleted
// file and a newcomer that created a new one could both "hold" it.
func acquireLock(ctx context.Context, path string) (*fileLock, error) {
	return backoff.Retry(ctx, func() (*fileLock, error) {
		l, err := tryLockPath(path)
		switch {
		case err != nil:
			return nil, backoff.Permanent(err)
		case l == nil:
			return nil, errLocked
		}
		return l, nil
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 5 * time.Millisecond, Multiplier: 2, MaxInterval: 200 * time.Millisecond}),
		backoff.WithMaxElapsedTime(0))
}

// errLocked is tryLockPath's "another holder has it", retried until ctx ends.
var errLocked = errors.New("locked by another process")

// tryLockPath returns nil, nil if another holder has the lock.
func tryLockPath(path string) (*fileLock, error) {
	for {
		fl := flock.New(path, flock.SetFlag(os.O_RDWR|os.O_CREATE), flock.SetPermissions(0o600))
		ok, err := fl.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !ok {
			return nil, nil
		}
		held, err := fl.Stat()
		if err == nil {
			var ok bool
			if ok, err = isCurrent(held, path); ok {
				return &fileLock{path: path, fl: fl}, nil
			}
		}
		// Unless the check failed, path no longer names the file we locked
		// (it was deleted or replaced since we opened it): lock anew.
		_ = fl.Unlock()
		if err != nil {
			return nil, fmt.Errorf("stat lock file: %w", err)
		}
	}
}

// isCurrent reports whether held, the file a lock was taken on, is still
// the file at path.
func isCurrent(held fs.FileInfo, path string) (bool, error) {
	current, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return os.SameFile(held, current), nil
}

// unlock releases the lock and closes the lock file.
func (l *fileLock) unlock() {
	_ = l.fl.Unlock()
}

// remove deletes the lock file while the lock is still held (see acquireLock).
func (l *fileLock) remove() error {
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove lock file: %w", err)
	}
	return nil
}

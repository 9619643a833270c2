package sdk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// lockRetry is how often LockFile tries again while another process holds
// the lock.
const lockRetry = 50 * time.Millisecond

// LockFile takes an exclusive lock on the file at path, shared with every
// process on this machine, and returns the function that releases it. It
// waits while another holder has it, until ctx is done (then it returns an
// error wrapping ctx.Err()). The file and its directory are created when
// missing, and the file is left in place afterwards.
//
// The core starts a plugin process per command, so the creates of two
// clusters run in parallel in two processes of your plugin: hold a lock
// around every read-then-claim of a resource they share (a free address or
// port, a name, a local image build), for as short as you can. The lock is
// advisory (flock(2) where there is one) and ends with the process that
// holds it, so a crashed plugin never leaves it held. It does not reach
// other machines: for a provider account shared by several machines, use
// your provider's own means (unique names, conditional creates).
func LockFile(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := flock.New(path)
	ok, err := l.TryLockContext(ctx, lockRetry)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("lock %s: %w", path, err)
	case !ok:
		return nil, fmt.Errorf("lock %s: not taken", path)
	}
	return func() { _ = l.Unlock() }, nil
}

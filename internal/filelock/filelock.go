// Package filelock serializes processes of the same user through an
// exclusive lock on a file: flock on unix, LockFileEx on Windows. The OS
// drops the lock when the holder exits, however it exits.
package filelock

import (
	"context"
	"fmt"
	"os"
	"time"
)

// retry is how often a waiting Lock tries again. The locks guard work of
// seconds (a metadata write, a key's propagation), so 10 ms is prompt
// enough and costs nothing.
const retry = 10 * time.Millisecond

// Lock takes the exclusive lock on path, creating the file (0600) if need
// be, and waits until it is free or ctx ends. Call release to let the next
// waiter in. The lock belongs to this open of the file: a second Lock of
// the same path waits even within one process.
func Lock(ctx context.Context, path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return func() { f.Close() }, nil // closing releases the lock
		}
		t.Reset(retry)
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

//go:build unix

package emulator

import (
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// recordingConn records each Write; while hold is open, the first Write
// waits for it (entered is closed once that Write started).
type recordingConn struct {
	net.Conn
	hold, entered chan struct{}
	fail          error

	mu     sync.Mutex
	writes []string
	closed bool
}

func newRecordingConn() *recordingConn {
	return &recordingConn{hold: make(chan struct{}), entered: make(chan struct{})}
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	first := len(c.writes) == 0
	c.writes = append(c.writes, string(p))
	c.mu.Unlock()
	if first {
		close(c.entered)
		<-c.hold
	}
	if c.fail != nil {
		return 0, c.fail
	}
	return len(p), nil
}

func (c *recordingConn) SetWriteDeadline(time.Time) error { return nil }

func (c *recordingConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *recordingConn) record() ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes), c.closed
}

func mustWrite(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

// TestBatchConnGathersWrites checks that what is written while a write is
// under way goes out in one write after it, and that Close sends what is
// queued before it closes.
func TestBatchConnGathersWrites(t *testing.T) {
	rc := newRecordingConn()
	b := newBatchConn(rc)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		mustWrite(t, b, "kex-reply")
		<-rc.entered // the first write is under way, and held
		mustWrite(t, b, "newkeys")
		mustWrite(t, b, "ext-info")
	}()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("Write waits for the connection's write under way")
	}
	close(rc.hold)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	writes, closed := rc.record()
	if want := []string{"kex-reply", "newkeysext-info"}; !slices.Equal(writes, want) || !closed {
		t.Errorf("the connection got writes %q, closed %v; want %q, closed", writes, closed, want)
	}
	if _, err := b.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestBatchConnWriteError checks that a failed write fails every Write
// after it.
func TestBatchConnWriteError(t *testing.T) {
	rc := newRecordingConn()
	rc.fail = errors.New("connection reset")
	close(rc.hold)
	b := newBatchConn(rc)
	mustWrite(t, b, "a")
	<-b.done // the sender met the error and stopped
	if _, err := b.Write([]byte("b")); err != rc.fail {
		t.Errorf("Write after a failed write: %v, want %v", err, rc.fail)
	}
	b.Close()
}

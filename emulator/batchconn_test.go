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

// recordingConn records each Write; the first Write waits until release
// or Close (entered is closed once that Write started). Reads wait for
// Close and read nothing.
type recordingConn struct {
	net.Conn
	hold, entered, gone chan struct{}
	releaseOnce         sync.Once
	fail                error

	mu     sync.Mutex
	writes []string
	closed bool
}

func newRecordingConn() *recordingConn {
	return &recordingConn{hold: make(chan struct{}), entered: make(chan struct{}), gone: make(chan struct{})}
}

func (c *recordingConn) release() { c.releaseOnce.Do(func() { close(c.hold) }) }

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

func (c *recordingConn) Read([]byte) (int, error) {
	<-c.gone
	return 0, net.ErrClosed
}

func (c *recordingConn) SetDeadline(time.Time) error      { return nil }
func (c *recordingConn) SetWriteDeadline(time.Time) error { return nil }
func (c *recordingConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (c *recordingConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.gone)
		c.release() // as a closed socket's write fails
	}
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
	rc.release()
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
	rc.release()
	b := newBatchConn(rc)
	mustWrite(t, b, "a")
	<-b.done // the sender met the error and stopped
	if _, err := b.Write([]byte("b")); err != rc.fail {
		t.Errorf("Write after a failed write: %v, want %v", err, rc.fail)
	}
	b.Close()
}

// oneConnListener accepts c, then waits until it is closed.
type oneConnListener struct {
	c      net.Conn
	once   sync.Once
	closed chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.c })
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestSSHDStopDropsConnections checks that Stop drops a connection at
// once, as a node's reboot would, though its client reads nothing and
// what the server wrote is still queued.
func TestSSHDStopDropsConnections(t *testing.T) {
	d := sshdModes[0].new(t).(*builtinSSHD)
	t.Cleanup(func() { d.Close() })
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	rc := newRecordingConn()
	t.Cleanup(rc.release)
	ln := &oneConnListener{c: rc, closed: make(chan struct{})}
	t.Cleanup(func() { close(ln.closed) })
	d.mu.Lock()
	d.ln = ln
	d.wg.Add(1)
	d.mu.Unlock()
	go d.serve(ln)
	<-rc.entered // the server's version line is being written, and held
	go d.Stop()
	select {
	case <-rc.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not close the connection while the server's write to it was held")
	}
}

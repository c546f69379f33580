package iap

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// batchSize bounds a burst of frames sent in one system call.
const batchSize = 256 << 10

// BatchConn wraps the connection under a websocket so that Stream sends
// the frames of a burst in one system call instead of one per frame, which
// at 16 KiB a frame is most of the cost of a bulk transfer: Stream writes a
// burst in one Write, and when a wrapper such as TLS cuts it into records,
// BatchConn gathers them. It also tells Stream when a burst of frames read
// has been handled, and reads and writes without the scheduler's system-call
// bookkeeping. tunnel's Dialer dials under it. A connection with a
// BatchConn under it already is returned as it is.
func BatchConn(c net.Conn) net.Conn {
	if findBatcher(c) != nil {
		return c
	}
	return &batchConn{Conn: c, raw: connRawIO(c)}
}

// batchConn buffers writes while held. Writes from others (gorilla's close
// and pong answers) while it is held go into the same buffer, in order, and
// out at release.
type batchConn struct {
	net.Conn
	raw    *rawIO // c's reads and writes bypassing the scheduler; nil if unsupported
	mu     sync.Mutex
	buf    []byte
	held   bool
	onRead atomic.Pointer[func()] // run before each read from the network
}

// Read runs the onRead hook, then reads. The websocket reader reads only
// when it has used up what it buffered, so the hook runs when a burst of
// frames has been handled.
func (c *batchConn) Read(p []byte) (int, error) {
	if f := c.onRead.Load(); f != nil {
		(*f)()
	}
	if c.raw != nil {
		return c.raw.Read(p)
	}
	return c.Conn.Read(p)
}

// setOnRead installs f as the hook, or removes it when f is nil.
func (c *batchConn) setOnRead(f func()) bool {
	if f == nil {
		c.onRead.Store(nil)
	} else {
		c.onRead.Store(&f)
	}
	return true
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held && len(c.buf)+len(p) > cap(c.buf) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if c.held && len(p) <= cap(c.buf)-len(c.buf) {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.write(p)
}

func (c *batchConn) write(p []byte) (int, error) {
	if c.raw != nil {
		return c.raw.Write(p)
	}
	return c.Conn.Write(p)
}

// hold starts buffering writes.
func (c *batchConn) hold() {
	c.mu.Lock()
	if c.buf == nil {
		c.buf = make([]byte, 0, batchSize)
	}
	c.held = true
	c.mu.Unlock()
}

// release sends what was buffered and stops buffering.
func (c *batchConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	return c.flushLocked()
}

func (c *batchConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// NetConn returns the wrapped connection, as tls.Conn's does.
func (c *batchConn) NetConn() net.Conn { return c.Conn }

// batcher is what Stream needs of a batchConn.
type batcher interface {
	hold()
	release() error
	setOnRead(func()) bool
}

// findBatcher looks for a batchConn under c, through TLS and other wrappers
// that expose theirs; nil when there is none.
func findBatcher(c net.Conn) batcher {
	for c != nil {
		switch v := c.(type) {
		case batcher:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// noBatch is the batcher of a connection without batchConn.
type noBatch struct{}

func (noBatch) hold()                 {}
func (noBatch) release() error        { return nil }
func (noBatch) setOnRead(func()) bool { return false }

// RawFile returns f's reads and writes bypassing the scheduler (see rawIO)
// when f is a non-blocking pipe or socket, else nil. Pipe uses it for the
// proxy's stdio.
func RawFile(f *os.File) io.ReadWriter {
	if raw := fileRawIO(f); raw != nil {
		return raw
	}
	return nil
}

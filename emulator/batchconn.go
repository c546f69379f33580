//go:build unix

package emulator

import (
	"net"
	"sync"
	"time"
)

// batchConn is a builtin node SSH server's connection. x/crypto/ssh writes
// each packet with a system call of its own, and a server writes several
// in a row (a key exchange's reply, NEWKEYS and EXT_INFO; a session's
// exit-status, EOF and close), each of which the relay then reads and
// sends on as a websocket message of its own. A batchConn's Write queues
// the bytes for a goroutine that writes all that is queued by the time
// it runs in one system call. Write waits while batchQueueMax bytes are
// queued, so a client that does not read still holds the server back.
type batchConn struct {
	net.Conn
	mu     sync.Mutex
	cond   sync.Cond // the queue or the state changed
	queue  []byte    // written, not yet sent
	spare  []byte    // the buffer last sent, for the next queue
	err    error     // the failed write's error, for every later Write
	closed bool
	done   chan struct{} // closed when the writing goroutine returns
}

const (
	// batchQueueMax bounds what a batchConn queues: twice what
	// x/crypto/ssh writes at most in one packet.
	batchQueueMax = 2 * 35000
	// batchCloseWait bounds how long Close waits for the queue to go out.
	batchCloseWait = 2 * time.Second
)

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c, done: make(chan struct{})}
	b.cond.L = &b.mu
	go b.send()
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.queue) >= batchQueueMax && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	switch {
	case b.err != nil:
		return 0, b.err
	case b.closed:
		return 0, net.ErrClosed
	}
	if len(b.queue) == 0 {
		b.cond.Broadcast() // the sender waits for a first byte
	}
	b.queue = append(b.queue, p...)
	return len(p), nil
}

// send writes what is queued until the connection closes and its queue
// is empty, or a write fails.
func (b *batchConn) send() {
	defer close(b.done)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for len(b.queue) == 0 && !b.closed {
			b.cond.Wait()
		}
		if len(b.queue) == 0 {
			return // closed, and all of it sent
		}
		out := b.queue
		b.queue, b.spare = b.spare[:0], nil
		b.cond.Broadcast() // room for a waiting Write
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil {
			b.err = err
			b.cond.Broadcast()
			return
		}
	}
}

// Close sends what is queued, waiting at most batchCloseWait for a client
// that does not read, then closes the connection.
func (b *batchConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	b.Conn.SetWriteDeadline(time.Now().Add(batchCloseWait))
	<-b.done
	return b.Conn.Close()
}

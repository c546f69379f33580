// Package broadcast sends one stream to many readers as it arrives, as
// `gkessh run` sends its stdin to every node. Each reader gets every byte
// from the start. The source is read only as fast as the slowest open
// reader takes it (back-pressure), with at most a window of bytes held in
// memory; what a reader opened later still needs goes to a private spool
// file, so nodes that start after others finished get all of it too.
package broadcast

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// DefaultWindow is how far the source may be read ahead of the slowest
// open reader: enough to keep an SSH channel's window full, small enough
// that ten nodes cost a few MiB.
const DefaultWindow = 1 << 20

// chunkSize is one read of the source, the size io.Copy and x/crypto/ssh
// work in.
const chunkSize = 32 << 10

// ErrClosed is a read from a Reader or Broadcaster already closed.
var ErrClosed = errors.New("broadcast: closed")

// Broadcaster reads src once for a known number of readers. Its methods are
// safe for concurrent use.
type Broadcaster struct {
	src    io.Reader
	window int64
	done   chan struct{} // closed when pump returns

	mu      sync.Mutex
	cond    *sync.Cond
	chunks  [][]byte // what was read from offset lo to hi, held in memory
	lo, hi  int64
	eof     bool
	err     error // the source's error, other than io.EOF
	reading bool  // pump is inside src.Read
	closed  bool

	readers int              // announced
	opened  int              // Open calls so far
	open    map[*Reader]bool // opened and not closed

	// spool holds bytes [0, spooled) for readers opened after they left
	// memory, written while a reader is still to come; spoolErr is why
	// there is none.
	spool    *os.File
	spoolErr error
	spooled  int64
}

// New starts reading src for readers readers, each to be opened with Open,
// holding at most window bytes ahead of the slowest (DefaultWindow if
// window <= 0). Nothing is read before the first reader opens. Close it
// when done.
func New(src io.Reader, readers, window int) *Broadcaster {
	if window <= 0 {
		window = DefaultWindow
	}
	b := &Broadcaster{src: src, window: int64(window), readers: readers, open: map[*Reader]bool{}, done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.pump()
	return b
}

// Open returns the next of the announced readers, positioned at the start
// of the stream. Close it when its node is done, whether or not it read:
// an open reader holds the source back.
func (b *Broadcaster) Open() *Reader {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &Reader{b: b}
	b.opened++
	b.open[r] = true
	b.cond.Broadcast()
	return r
}

// Close stops reading the source and ends every reader with ErrClosed. A
// read of the source under way is interrupted when the source has a read
// deadline (a pollable pipe, a net.Conn), and Close waits for it; otherwise
// that read ends on its own, when the source delivers or ends.
func (b *Broadcaster) Close() error {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	wait := !b.reading
	if !wait {
		if d, ok := b.src.(interface{ SetReadDeadline(time.Time) error }); ok {
			wait = d.SetReadDeadline(time.Unix(1, 0)) == nil
		}
	}
	b.chunks = nil
	if b.spool != nil {
		b.spool.Close()
		os.Remove(b.spool.Name()) // already gone where the OS allows removing an open file
	}
	b.mu.Unlock()
	if wait {
		<-b.done
	}
	return nil
}

// pump reads the source while an open reader is within the window of it.
func (b *Broadcaster) pump() {
	defer close(b.done)
	buf := make([]byte, chunkSize)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for !b.closed && !b.eof && !b.wanted() {
			b.cond.Wait()
		}
		if b.closed || b.eof {
			return
		}
		b.reading = true
		b.mu.Unlock()
		n, err := b.src.Read(buf)
		b.mu.Lock()
		b.reading = false
		if b.closed {
			return
		}
		if n > 0 {
			b.chunks = append(b.chunks, append([]byte(nil), buf[:n]...))
			b.hi += int64(n)
		}
		if err != nil {
			b.eof = true
			if err != io.EOF {
				b.err = fmt.Errorf("read: %w", err)
			}
		}
		b.cond.Broadcast()
	}
}

// wanted says whether some open reader wants more than memory holds and
// the window allows reading it.
func (b *Broadcaster) wanted() bool {
	return len(b.open) > 0 && b.hi-b.slowest() < b.window
}

// slowest is the lowest offset of an open reader, or hi.
func (b *Broadcaster) slowest() int64 {
	low := b.hi
	for r := range b.open {
		low = min(low, r.off)
	}
	return low
}

// trim lets go of the chunks every open reader has read, spooling them
// while a reader is still to open.
func (b *Broadcaster) trim() {
	low := b.slowest()
	for len(b.chunks) > 0 && b.lo+int64(len(b.chunks[0])) <= low {
		c := b.chunks[0]
		if b.opened < b.readers {
			b.spoolChunk(c)
		}
		b.chunks[0] = nil
		b.chunks = b.chunks[1:]
		b.lo += int64(len(c))
	}
}

func (b *Broadcaster) spoolChunk(c []byte) {
	if b.spoolErr != nil {
		return
	}
	if b.spool == nil {
		f, err := os.CreateTemp("", "gkessh-stdin-*")
		if err != nil {
			b.spoolErr = err
			return
		}
		os.Remove(f.Name()) // where the OS allows: the data stays reachable by this file only
		b.spool = f
	}
	if _, err := b.spool.WriteAt(c, b.spooled); err != nil {
		b.spoolErr = err
		return
	}
	b.spooled += int64(len(c))
}

// Reader is one reader's view of the stream.
type Reader struct {
	b      *Broadcaster
	off    int64
	closed bool
}

// Read returns the next bytes of the stream, waiting for the source when
// this reader has read all of it so far. It returns io.EOF at the end of
// the source, and the source's error if it failed.
func (r *Reader) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		switch {
		case r.closed || b.closed:
			return 0, ErrClosed
		case r.off < b.lo:
			if b.spoolErr != nil {
				return 0, fmt.Errorf("broadcast: keeping the stream for a later reader: %w", b.spoolErr)
			}
			if r.off >= b.spooled {
				return 0, errors.New("broadcast: more readers than announced: the start of the stream is gone")
			}
			n, err := b.spool.ReadAt(p[:min(int64(len(p)), b.spooled-r.off)], r.off)
			r.advance(n)
			if n > 0 {
				err = nil
			}
			return n, err
		case r.off < b.hi:
			at := b.lo
			for _, c := range b.chunks {
				if r.off < at+int64(len(c)) {
					n := copy(p, c[r.off-at:])
					r.advance(n)
					return n, nil
				}
				at += int64(len(c))
			}
			panic("broadcast: offset inside memory but no chunk holds it")
		case b.eof:
			if b.err != nil {
				return 0, b.err
			}
			return 0, io.EOF
		default:
			b.cond.Wait()
		}
	}
}

// advance moves the reader on n bytes and lets go of what no reader needs.
func (r *Reader) advance(n int) {
	r.off += int64(n)
	r.b.trim()
	r.b.cond.Broadcast()
}

// Close ends this reader: a Read waiting on the source returns ErrClosed,
// and the source is no longer held back for it.
func (r *Reader) Close() error {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !r.closed {
		r.closed = true
		delete(b.open, r)
		b.trim()
		b.cond.Broadcast()
	}
	return nil
}

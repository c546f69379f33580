package iap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Tuning. ACKs go out once 32 KiB are owed (checked at the end of each
// burst of frames read), with every outgoing write, and after a short idle
// delay so that a quiet tail does not stay unacknowledged.
const (
	ackThreshold = 32 << 10
	ackDelay     = 10 * time.Millisecond
	// sendWindow bounds the bytes kept for resending; Write blocks beyond it.
	// It is far above the bandwidth-delay product of any IAP path, and a
	// bigger one only costs memory.
	sendWindow = 2 << 20
	// recvBuffer bounds the bytes received but not yet Read; past it the
	// stream stops reading its websocket, which pushes back on the peer.
	// When WriteTo's writer goes away mid-burst, what the reader gathered
	// for it (up to pendMax) lands in the buffer beyond this bound.
	recvBuffer = 1 << 20
	// MaxMessage is the largest relay message accepted: a DATA frame of
	// MaxRecvDataLen, with room for trailing bytes.
	MaxMessage = DataHeaderLen + MaxRecvDataLen + 64
	// CloseWait bounds the wait for the peer's answer to a close frame.
	CloseWait = 2 * time.Second
)

// Stream is the client's end of an IAP relay v4 byte stream. Write queues
// bytes that go out as DATA frames; Read (or WriteTo) returns the payload
// of DATA frames received. Every byte sent is kept until the relay
// acknowledges it, so the stream outlives its websocket: Serve carries it
// over one websocket at a time, and after a break Resume rewinds it to
// what the relay says it holds before the next Serve. The tunnel client
// (Conn) is built on it.
//
// Concurrency: Read, Write and the other methods may be called from any
// goroutine. gorilla/websocket allows one reader and one writer of messages
// at a time (close frames go through WriteControl, which may run beside
// them). Serve's own goroutine is the only reader. Writing takes sendMu:
// the goroutine Serve starts takes it to send ACKs, resends and the close
// frame, and Write takes it when free to send its own bytes at once, saving
// a hand-off per Write.
//
// Lock order, outermost first; a goroutine holding one may take only those
// after it:
//
//	writeTurn (one Write call at a time; a channel)
//	sendMu    (writing messages to the attached websocket)
//	mu        (the stream's state below)
//	attachment.wireMu (a burst or a close frame on the connection)
//	batchConn.mu (the connection's write buffer)
//
// attachment.errMu and deadline.mu are leaves. mu is never held across a
// network write, a channel wait or the sink's Write (writeSink lets go of
// it); sendMu is held across network writes, so only TryLock takes it
// where waiting would be wrong.
type Stream struct {
	mu sync.Mutex

	// Outgoing bytes. out holds stream offsets [acked, acked+out.len()):
	// [acked, sent) went out and awaits the peer's ACK, the rest waits for
	// the writer.
	out   ring
	acked uint64
	sent  uint64

	// Incoming bytes. in holds received bytes not yet Read; recvd counts
	// every DATA payload byte received, ackSent the last count acknowledged.
	in       ring
	recvd    uint64
	ackSent  uint64
	ackIdle  bool        // ackTimer fired: acknowledge what is owed
	ackArmed bool        // ackTimer is running
	ackTimer *time.Timer // acknowledges a quiet tail after ackDelay

	// sink, set by WriteTo, takes received bytes instead of in. With
	// coalesce (the websocket tells when a burst ends) the reader gathers
	// payloads in pend, which only it touches, and writes them at once.
	coalesce bool
	pend     []byte
	sink     io.Writer
	sinkBusy bool          // the websocket reader is writing to sink
	sinkN    int64         // bytes written to sink
	sinkErr  error         // sink's write error
	sinkEnd  chan struct{} // closed when WriteTo should return
	sinkIdle chan struct{} // signalled when sinkBusy clears

	att       *attachment // the websocket being served, nil between them
	finished  bool        // no websocket will be served again
	rerr      error       // Read's error once in is drained
	werr      error       // Write's error
	closing   bool        // Shutdown was called: drain, then close normally
	closeSent bool
	lingered  chan struct{} // closed when Shutdown's linger runs out
	linger    *time.Timer

	// Wake-ups, each with room for one pending signal. A waiter that finds
	// more to do after taking its turn passes the signal on.
	readable chan struct{} // data or an error for Read
	writable chan struct{} // room or an error for Write
	inRoom   chan struct{} // room in in, for the websocket reader
	sendDue  chan struct{} // work for the websocket writer
	shut     chan struct{} // closed by Shutdown and Abort
	shutOnce sync.Once

	sendMu     sync.Mutex    // held to write messages; see above
	ackTimeout time.Duration // SetAckTimeout's bound; 0: none
	// For the ack timeout: heard counts the relay's messages (the
	// websocket reader adds to it); awaiting says DATA went out since the
	// count was awaitHeard, first at awaitSince, and the relay has not been
	// heard from since, as far as send knows.
	heard      atomic.Uint64
	awaiting   bool
	awaitHeard uint64
	awaitSince time.Time
	writeTurn  chan struct{} // held by one Write at a time, so each is contiguous
	rdl, wdl   deadline
}

// ErrAckTimeout ends a websocket on which the relay sent nothing at all
// for the ack timeout after DATA that it has not acknowledged: the path is
// dead even if the socket does not know it yet. Serve returns it like any
// broken websocket, so the stream can Resume on a new one.
var ErrAckTimeout = errors.New("iap: the relay sent nothing back for too long: the websocket is dead")

// SetAckTimeout makes Serve drop its websocket when DATA went out, is not
// acknowledged, and the relay has sent nothing at all since, for d: that
// detects a relay that went silent, without websocket pings (IAP may not
// take them). Any message from the relay counts, not only an ACK, since
// IAP's cadence for small sends is unknown: a relay that acknowledges a
// keystroke only after a long idle, but echoes it at once, is alive. An
// ACK may lag that way for 8 times d, not for ever. Zero turns it off.
// Call it before Serve.
func (s *Stream) SetAckTimeout(d time.Duration) {
	s.mu.Lock()
	s.ackTimeout = d
	s.mu.Unlock()
}

// watchRelay fails a when DATA sent on it stays unacknowledged and the
// relay silent past the ack timeout; it returns when a stops.
func (s *Stream) watchRelay(a *attachment, timeout time.Duration) {
	t := time.NewTicker(timeout / 4)
	defer t.Stop()
	s.mu.Lock()
	lastAck, ackSince := s.acked, time.Now()
	s.mu.Unlock()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			waiting := s.sent > s.acked
			silent := waiting && s.awaiting && s.awaitHeard == s.heard.Load() && now.Sub(s.awaitSince) >= timeout
			if s.acked != lastAck || !waiting {
				lastAck, ackSince = s.acked, now
			}
			s.mu.Unlock()
			if silent || now.Sub(ackSince) >= ackLag*timeout {
				a.fail(ErrAckTimeout)
				return
			}
		}
	}
}

// ackLag is how many ack timeouts an ACK may lag while the relay does
// answer otherwise: a relay may acknowledge small sends only after a long
// idle, but one that never does would fill the send window, and writes
// would block for good.
const ackLag = 8

// sentData notes that DATA went out, for the ack timeout: the wait for
// the relay starts with the first DATA since it was last heard from. Call
// with s.mu held.
func (s *Stream) sentData() {
	if h := s.heard.Load(); !s.awaiting || s.awaitHeard != h {
		s.awaiting, s.awaitHeard, s.awaitSince = true, h, time.Now()
	}
}

// NewStream returns a Stream with nothing sent or received.
func NewStream() *Stream {
	s := &Stream{
		readable:  make(chan struct{}, 1),
		writable:  make(chan struct{}, 1),
		inRoom:    make(chan struct{}, 1),
		sendDue:   make(chan struct{}, 1),
		shut:      make(chan struct{}),
		sinkIdle:  make(chan struct{}, 1),
		writeTurn: make(chan struct{}, 1),
		rdl:       makeDeadline(),
		wdl:       makeDeadline(),
	}
	s.ackTimer = time.AfterFunc(time.Hour, func() {
		s.mu.Lock()
		s.ackArmed, s.ackIdle = false, true
		s.mu.Unlock()
		notify(s.sendDue)
	})
	s.ackTimer.Stop()
	return s
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *Stream) wakeAll() {
	notify(s.readable)
	notify(s.writable)
	notify(s.inRoom)
	notify(s.sendDue)
}

// Read reads payload received from the peer. It returns io.EOF once the
// peer closed the stream normally and everything before that was read, and
// net.ErrClosed after Shutdown.
func (s *Stream) Read(p []byte) (int, error) {
	for {
		if isClosed(s.rdl.wait()) {
			return 0, os.ErrDeadlineExceeded
		}
		s.mu.Lock()
		switch {
		case s.closing:
			s.mu.Unlock()
			return 0, net.ErrClosed
		case s.in.len() > 0:
			n := s.in.read(p)
			if s.in.len() > 0 {
				notify(s.readable)
			}
			s.mu.Unlock()
			notify(s.inRoom)
			return n, nil
		case s.rerr != nil:
			err := s.rerr
			s.mu.Unlock()
			notify(s.readable)
			return 0, err
		case len(p) == 0:
			s.mu.Unlock()
			return 0, nil
		}
		s.mu.Unlock()
		select {
		case <-s.readable:
		case <-s.shut:
		case <-s.rdl.wait():
		}
	}
}

// WriteTo writes what the stream receives to w until the peer closes the
// stream normally (it returns nil) or the stream fails or is shut down. It
// first writes what Read has not taken, then the websocket reader writes
// each DATA payload straight to w: no copy, no hand-off. A slow w slows the
// peer down, as a full receive buffer would; a write to w that never
// returns holds up Serve, so whoever stops the stream must also unblock w
// (close it). Read deadlines do not apply; only one WriteTo or Read may run
// at a time.
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	var n int64
	buf := make([]byte, 64<<10)
	s.mu.Lock()
	for s.in.len() > 0 && !s.closing {
		k := s.in.read(buf)
		s.mu.Unlock()
		notify(s.inRoom)
		m, err := w.Write(buf[:k])
		n += int64(m)
		if err != nil {
			return n, err
		}
		s.mu.Lock()
	}
	if s.closing || s.rerr != nil {
		err := s.rerr
		if s.closing {
			err = net.ErrClosed
		}
		s.mu.Unlock()
		if err == io.EOF {
			err = nil
		}
		return n, err
	}
	end := make(chan struct{})
	s.sink, s.sinkN, s.sinkErr, s.sinkEnd = w, 0, nil, end
	s.mu.Unlock()

	<-end
	s.mu.Lock()
	for s.sinkBusy {
		s.mu.Unlock()
		<-s.sinkIdle
		s.mu.Lock()
	}
	s.sink = nil
	n += s.sinkN
	err := s.sinkErr
	switch {
	case err != nil:
	case s.closing:
		err = net.ErrClosed
	case s.rerr != io.EOF:
		err = s.rerr
	}
	s.mu.Unlock()
	return n, err
}

// endSinkLocked makes WriteTo return.
func (s *Stream) endSinkLocked() {
	if s.sinkEnd != nil {
		close(s.sinkEnd)
		s.sinkEnd = nil
	}
}

// Write queues p for the peer and, unless another goroutine is writing to
// the websocket or a write deadline is set, sends it before returning. It
// blocks while the send window is full of unacknowledged bytes.
func (s *Stream) Write(p []byte) (int, error) {
	select {
	case s.writeTurn <- struct{}{}:
	case <-s.shut:
		return 0, s.writeErr()
	case <-s.wdl.wait():
		return 0, os.ErrDeadlineExceeded
	}
	defer func() { <-s.writeTurn }()
	n := 0
	for {
		if isClosed(s.wdl.wait()) {
			return n, os.ErrDeadlineExceeded
		}
		s.mu.Lock()
		if err := s.writeErrLocked(); err != nil {
			s.mu.Unlock()
			return n, err
		}
		k := s.out.write(p[n:], sendWindow)
		s.mu.Unlock()
		switch {
		case k == 0:
		case s.wdl.active():
			// Sending here could block in the kernel past the deadline.
			notify(s.sendDue)
		default:
			s.flush()
		}
		if n += k; n == len(p) {
			return n, nil
		}
		select {
		case <-s.writable:
		case <-s.shut:
		case <-s.wdl.wait():
		}
	}
}

// flush sends what is queued on the attached websocket if no one else is
// writing to it, else leaves it to them: the holder of sendMu sends all that
// is queued before letting go, and the writer goroutine is woken in case
// that was it, about to wait.
func (s *Stream) flush() {
	if !s.sendMu.TryLock() {
		notify(s.sendDue)
		return
	}
	s.mu.Lock()
	a := s.att
	s.mu.Unlock()
	if a != nil {
		if _, err := s.send(a, false); err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			a.fail(err)
		}
	}
	s.sendMu.Unlock()
}

func (s *Stream) writeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeErrLocked()
}

func (s *Stream) writeErrLocked() error {
	if s.closing {
		return net.ErrClosed
	}
	return s.werr
}

// CloseWrite makes further Writes fail; what was written still goes out.
// The v4 protocol cannot tell the peer, so reading goes on until it closes.
func (s *Stream) CloseWrite() error {
	s.mu.Lock()
	if s.werr == nil {
		s.werr = errWriteClosed
	}
	s.mu.Unlock()
	notify(s.writable)
	return nil
}

var errWriteClosed = errors.New("iap: write after CloseWrite")

// SetReadDeadline sets when a blocked Read gives up, as in net.Conn.
func (s *Stream) SetReadDeadline(t time.Time) error { s.rdl.set(t); return nil }

// SetWriteDeadline sets when a blocked Write gives up, as in net.Conn.
func (s *Stream) SetWriteDeadline(t time.Time) error { s.wdl.set(t); return nil }

// Received returns how many payload bytes the stream has received: the ack
// to resume from.
func (s *Stream) Received() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recvd
}

// Acked returns how many bytes of this side's stream the peer has
// acknowledged: with Received, what tells a websocket that moved the
// stream from one that did not.
func (s *Stream) Acked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Resume prepares the stream for a new websocket after a break: peerAck is
// how many bytes of the stream the relay holds (its RECONNECT_SUCCESS_ACK).
// Bytes after it are sent again; *RewindError says they are no longer kept.
func (s *Stream) Resume(peerAck uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.att != nil || s.finished {
		return errors.New("iap: resume of a stream that is being served or is finished")
	}
	if peerAck < s.acked || peerAck > s.sent {
		return &RewindError{Ack: peerAck, Kept: s.acked, Sent: s.sent}
	}
	s.out.discard(int(peerAck - s.acked))
	s.acked, s.sent = peerAck, peerAck
	// The handshake told the peer how much we hold.
	s.ackSent = s.recvd
	return nil
}

// RewindError reports a resume from a position the stream cannot replay from.
type RewindError struct {
	Ack  uint64 // where the peer asked to resume
	Kept uint64 // first byte still kept
	Sent uint64 // bytes sent so far
}

func (e *RewindError) Error() string {
	return fmt.Sprintf("cannot resume at byte %d: only bytes %d to %d are kept", e.Ack, e.Kept, e.Sent)
}

// Shutdown ends the stream from this side: Read and Write fail with
// net.ErrClosed at once, bytes already written still go out, and once the
// relay acknowledged them, or linger passed, the websocket is closed
// normally (1000). A Serve in progress then returns nil; if no websocket
// is attached, the next Serve finishes the job.
func (s *Stream) Shutdown(linger time.Duration) {
	s.mu.Lock()
	if s.closing || s.finished {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.endSinkLocked()
	lingered := make(chan struct{})
	s.lingered = lingered
	s.linger = time.AfterFunc(linger, func() {
		close(lingered)
		notify(s.sendDue)
	})
	s.mu.Unlock()
	s.shutOnce.Do(func() { close(s.shut) })
	s.wakeAll()
}

// Abort ends the stream at once because of err, which Read (after the bytes
// already received) and Write then return. It closes the websocket being
// served, if any, without a close frame.
func (s *Stream) Abort(err error) {
	s.mu.Lock()
	if s.rerr == nil {
		s.rerr = err
	}
	if s.werr == nil {
		s.werr = err
	}
	s.finishLocked()
	a := s.att
	s.mu.Unlock()
	if a != nil {
		a.ws.Close()
	}
	s.shutOnce.Do(func() { close(s.shut) })
	s.wakeAll()
}

// Finished reports whether the stream is finished: closed by either side
// or aborted.
func (s *Stream) Finished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished
}

// finishLocked marks the stream finished for good.
func (s *Stream) finishLocked() {
	s.finished = true
	s.endSinkLocked()
	s.ackTimer.Stop()
	if s.linger != nil {
		s.linger.Stop()
	}
	if s.rerr == nil {
		s.rerr = net.ErrClosed
	}
	if s.werr == nil {
		s.werr = net.ErrClosed
	}
}

// PeerClosedError is what Write returns after the peer closed the stream
// normally; Read returns io.EOF.
type PeerClosedError struct {
	Code   int
	Reason string
}

func (e *PeerClosedError) Error() string {
	return fmt.Sprintf("iap: peer closed the tunnel (%d %q)", e.Code, e.Reason)
}

// Is makes errors.Is(err, io.ErrClosedPipe) hold, as writing to a closed
// pipe would.
func (e *PeerClosedError) Is(target error) bool { return target == io.ErrClosedPipe }

// eofCode reports close codes that end a stream normally: the peer is done,
// nothing is lost that resuming could save.
func eofCode(code int) bool {
	switch code {
	case websocket.CloseNormalClosure, websocket.CloseNoStatusReceived,
		CodeDestinationWriteFailed, CodeDestinationReadFailed:
		return true
	}
	return false
}

// ProtocolError is a violation of the relay protocol by the peer. Code is
// the close code sent to it.
type ProtocolError struct {
	Code int
	Msg  string
}

func (e *ProtocolError) Error() string { return "protocol error: " + e.Msg }

func protocolErrorf(code int, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

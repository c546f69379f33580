package tunnel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Tuning. The ACK cadence follows gcloud's: acknowledge once 32 KiB are
// owed, with every outgoing write, and after a short idle delay so a quiet
// tail does not stay unacknowledged.
const (
	ackThreshold = 32 << 10
	ackDelay     = 10 * time.Millisecond
	// sendWindow bounds the bytes kept for resending; Write blocks beyond it.
	// It is far above the bandwidth-delay product of any IAP path.
	sendWindow = 4 << 20
	// recvBuffer bounds the bytes received but not yet Read; past it the
	// stream stops reading its websocket, which pushes back on the peer.
	recvBuffer = 1 << 20
	// maxMessage is the largest relay message accepted: a full DATA frame,
	// or a LONG_CLOSE with the longest reason.
	maxMessage = MaxFrameLen + 4
	// closeWait bounds the wait for the peer's answer to a close frame.
	closeWait = 2 * time.Second
)

// Stream is one end of an IAP relay v4 byte stream, whichever side dialled.
// Write queues bytes that go out as DATA frames; Read returns the payload of
// DATA frames received. Every byte sent is kept until the peer acknowledges
// it, so the stream outlives its websocket: Serve carries it over one
// websocket at a time, and after a break Resume rewinds it to what the peer
// says it holds before the next Serve. The tunnel client (Conn) and the
// emulator's relay are both built on it.
//
// Concurrency: Read, Write and the other methods may be called from any
// goroutine. Serve owns the websocket while it runs: its own goroutine is the
// websocket's only reader and the one goroutine it starts is the only writer
// of data messages (gorilla/websocket allows one of each; close frames go
// through WriteControl, which may run beside them).
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
	in      ring
	recvd   uint64
	ackSent uint64

	ws        *websocket.Conn // attached by Serve, nil between websockets
	done      bool            // no websocket will be served again
	rerr      error           // Read's error once in is drained
	werr      error           // Write's error
	closing   bool            // Shutdown was called: drain, then send closeCode
	closeSent bool
	closeCode int
	closeText string
	lingered  chan struct{} // closed when Shutdown's linger runs out
	linger    *time.Timer

	// Wake-ups, each with room for one pending signal. A waiter that finds
	// more to do after taking its turn passes the signal on.
	readable chan struct{} // data or an error for Read
	writable chan struct{} // room or an error for Write
	room     chan struct{} // room in in, for the websocket reader
	kick     chan struct{} // work for the websocket writer
	shut     chan struct{} // closed by Shutdown and Abort
	shutOnce sync.Once

	wlock    chan struct{} // held by one Write at a time, so each is contiguous
	rdl, wdl deadline
}

// NewStream returns a Stream with nothing sent or received.
func NewStream() *Stream {
	return &Stream{
		readable: make(chan struct{}, 1),
		writable: make(chan struct{}, 1),
		room:     make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		shut:     make(chan struct{}),
		wlock:    make(chan struct{}, 1),
		rdl:      makeDeadline(),
		wdl:      makeDeadline(),
	}
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
	notify(s.room)
	notify(s.kick)
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
			notify(s.room)
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

// Write queues p for the peer. It blocks while the send window is full of
// unacknowledged bytes.
func (s *Stream) Write(p []byte) (int, error) {
	select {
	case s.wlock <- struct{}{}:
	case <-s.shut:
		return 0, s.writeErr()
	case <-s.wdl.wait():
		return 0, os.ErrDeadlineExceeded
	}
	defer func() { <-s.wlock }()
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
		if k > 0 {
			notify(s.kick)
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

// Resume prepares the stream for a new websocket after a break: peerAck is
// how many bytes of this side's stream the peer holds (RECONNECT_SUCCESS_ACK
// for a client, the ack query parameter for a relay). Bytes after it are
// sent again; *RewindError says they are no longer kept.
func (s *Stream) Resume(peerAck uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ws != nil || s.done {
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
	return fmt.Sprintf("iap: cannot resume at byte %d: only bytes %d to %d are kept", e.Ack, e.Kept, e.Sent)
}

// Shutdown ends the stream from this side: Read and Write fail with
// net.ErrClosed at once, bytes already written still go out, and once the
// peer acknowledged them, or linger passed, the websocket is closed with
// code and reason. A Serve in progress then returns nil; if no websocket is
// attached, the next Serve finishes the job.
func (s *Stream) Shutdown(code int, reason string, linger time.Duration) {
	s.mu.Lock()
	if s.closing || s.done {
		s.mu.Unlock()
		return
	}
	s.closing, s.closeCode, s.closeText = true, code, reason
	lingered := make(chan struct{})
	s.lingered = lingered
	s.linger = time.AfterFunc(linger, func() {
		close(lingered)
		notify(s.kick)
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
	ws := s.ws
	s.mu.Unlock()
	if ws != nil {
		ws.Close()
	}
	s.shutOnce.Do(func() { close(s.shut) })
	s.wakeAll()
}

// Done reports whether the stream is finished: closed by either side or
// aborted.
func (s *Stream) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// finishLocked marks the stream finished for good.
func (s *Stream) finishLocked() {
	s.done = true
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

func (e *ProtocolError) Error() string { return "iap: protocol error: " + e.Msg }

func protocolErrorf(code int, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Serve carries the stream over ws until ws fails or the stream ends. It
// returns nil when the stream is finished (closed by either side); any
// other error means ws broke and the stream can Resume on a new websocket,
// or be Aborted. The handshake (CONNECT_SUCCESS_SID or
// RECONNECT_SUCCESS_ACK) must be done before Serve. Serve closes ws.
func (s *Stream) Serve(ws *websocket.Conn) error {
	ws.SetReadLimit(maxMessage)
	s.mu.Lock()
	if s.ws != nil || s.done {
		s.mu.Unlock()
		ws.Close()
		return errors.New("iap: serve of a stream that is being served or is finished")
	}
	s.ws = ws
	s.mu.Unlock()

	// first is the reason ws ended: whichever loop failed first. The other
	// one usually fails only because the first closed the connection.
	var (
		firstMu sync.Mutex
		first   error
	)
	fail := func(err error) {
		firstMu.Lock()
		if first == nil {
			first = err
		}
		firstMu.Unlock()
	}
	stop := make(chan struct{})
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		if err := s.writeLoop(ws, stop); err != nil {
			fail(err)
			ws.Close() // unblock the reader
		}
	}()
	err := s.readLoop(ws, stop)
	fail(err)
	var pe *ProtocolError
	if errors.As(err, &pe) {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(pe.Code, pe.Msg), time.Now().Add(time.Second))
	}
	close(stop)
	ws.Close()
	<-wdone

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.wakeAll()
	s.ws = nil
	var ce *websocket.CloseError
	switch {
	case s.done:
		return nil
	case s.closeSent, s.closing && errors.As(first, &ce):
		// Our close went out, or crossed the peer's.
		s.finishLocked()
		return nil
	case errors.As(first, &ce) && eofCode(ce.Code):
		s.rerr = io.EOF
		s.werr = &PeerClosedError{Code: ce.Code, Reason: ce.Text}
		s.finishLocked()
		return nil
	}
	return first
}

// readLoop reads relay messages until ws fails or the stream ends.
func (s *Stream) readLoop(ws *websocket.Conn, stop <-chan struct{}) error {
	buf := make([]byte, maxMessage)
	for {
		typ, r, err := ws.NextReader()
		if err != nil {
			return err
		}
		if typ != websocket.BinaryMessage {
			return protocolErrorf(CodeInvalidWebsocketOpcode, "text message, want binary")
		}
		n, err := readMessage(r, buf)
		if err != nil {
			return err
		}
		if err := s.handle(buf[:n], stop); err != nil {
			return err
		}
	}
}

// handle acts on one relay message received mid-stream.
func (s *Stream) handle(msg []byte, stop <-chan struct{}) error {
	f, err := ParseFrame(msg)
	if err != nil {
		return protocolErrorf(CodeInvalidData, "%v", err)
	}
	switch f.Tag {
	case TagData:
		return s.deliver(f.Data, stop)
	case TagAck:
		return s.acknowledge(f.Ack)
	case TagConnectSuccessSID, TagReconnectSuccessACK:
		return protocolErrorf(CodeInvalidTag, "handshake frame %#04x in mid-stream", f.Tag)
	}
	// Other tags, LONG_CLOSE included, are ignored as the protocol asks;
	// the close frame that follows says why.
	return nil
}

// readMessage reads the rest of a message into buf, dropping what does not
// fit (ParseFrame ignores trailing bytes as gcloud does; the read limit
// keeps a hostile peer from sending much).
func readMessage(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		if n == len(buf) {
			_, err := io.Copy(io.Discard, r)
			return n, err
		}
		k, err := r.Read(buf[n:])
		n += k
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

var errStopped = errors.New("iap: websocket stopped")

// deliver stores a DATA payload for Read, waiting for room; once the stream
// is shut down the payload is dropped, but still counted and acknowledged,
// so the peer can finish.
func (s *Stream) deliver(p []byte, stop <-chan struct{}) error {
	for {
		s.mu.Lock()
		owed := s.recvd - s.ackSent
		var k int
		if s.closing || s.done {
			k = len(p)
		} else {
			k = s.in.write(p, recvBuffer)
		}
		s.recvd += uint64(k)
		// Wake the writer to start the idle ACK timer, or to ACK now.
		if k > 0 && (owed == 0 || s.recvd-s.ackSent >= ackThreshold) {
			notify(s.kick)
		}
		s.mu.Unlock()
		if k > 0 {
			notify(s.readable)
		}
		if p = p[k:]; len(p) == 0 {
			return nil
		}
		select {
		case <-s.room:
		case <-s.shut:
		case <-stop:
			return errStopped
		}
	}
}

// acknowledge applies an ACK from the peer.
func (s *Stream) acknowledge(n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.sent {
		return protocolErrorf(CodeBadAck, "ack of %d bytes, only %d sent", n, s.sent)
	}
	if n < s.acked {
		return protocolErrorf(CodeBadAck, "ack went back from %d to %d bytes", s.acked, n)
	}
	s.out.discard(int(n - s.acked))
	s.acked = n
	notify(s.writable)
	if s.closing {
		notify(s.kick)
	}
	return nil
}

// writeLoop sends DATA from out, ACKs, and at the end the close frame. It
// returns nil when stop closes.
func (s *Stream) writeLoop(ws *websocket.Conn, stop <-chan struct{}) error {
	frame := make([]byte, MaxFrameLen)
	var ackMsg [10]byte
	idle := time.NewTimer(ackDelay)
	idle.Stop()
	defer idle.Stop()
	armed, idleFired := false, false
	for {
		s.mu.Lock()
		end := s.acked + uint64(s.out.len())
		owed := s.recvd - s.ackSent
		n := 0
		if s.sent < end {
			n = int(min(end-s.sent, MaxDataLen))
			// Counted as sent before it is written, so that an ACK racing
			// the write is not taken for one beyond what was sent.
			s.out.copyAt(frame[DataHeaderLen:DataHeaderLen+n], int(s.sent-s.acked))
			s.sent += uint64(n)
		}
		ack := owed > 0 && (n > 0 || idleFired || owed >= ackThreshold)
		if ack {
			s.ackSent = s.recvd
		}
		ackVal := s.ackSent
		closeNow := s.closing && !s.closeSent && n == 0 && (s.acked == end || isClosed(s.lingered))
		if closeNow {
			s.closeSent = true
		}
		code, text := s.closeCode, s.closeText
		s.mu.Unlock()
		idleFired = false

		if ack {
			if err := ws.WriteMessage(websocket.BinaryMessage, AppendAck(ackMsg[:0], ackVal)); err != nil {
				return writeErr(err, stop)
			}
		}
		if n > 0 {
			AppendDataHeader(frame[:0], n)
			if err := ws.WriteMessage(websocket.BinaryMessage, frame[:DataHeaderLen+n]); err != nil {
				return writeErr(err, stop)
			}
			continue
		}
		if closeNow {
			msg := websocket.FormatCloseMessage(code, text)
			if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait)); err != nil {
				return writeErr(err, stop)
			}
			// The reader waits for the peer's close frame, not forever.
			ws.SetReadDeadline(time.Now().Add(closeWait))
			<-stop
			return nil
		}
		if ack {
			continue
		}
		if owed > 0 && !armed {
			idle.Reset(ackDelay)
			armed = true
		}
		select {
		case <-s.kick:
		case <-idle.C:
			armed, idleFired = false, true
		case <-stop:
			return nil
		}
	}
}

// writeErr turns a failed write into writeLoop's result. ErrCloseSent means
// the reader already answered the peer's close frame, and reports it.
func writeErr(err error, stop <-chan struct{}) error {
	if errors.Is(err, websocket.ErrCloseSent) {
		<-stop
		return nil
	}
	return err
}

package iap

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// attachment is one websocket being served. Its DATA and ACK messages are
// built here, straight from the send ring into buf, and written to ws's
// connection a burst at a time; gorilla, which would copy each message
// twice more on the way, reads and sends control frames.
type attachment struct {
	ws     *websocket.Conn
	conn   net.Conn // ws's connection
	keys   maskKeys // masking keys of the frames built (RFC 6455 5.3)
	b      batcher
	gather bool          // b is under a wrapper (TLS) that writes piecemeal
	buf    []byte        // the burst being built, under Stream.sendMu
	stop   chan struct{} // closed when Serve is done with ws

	// wireMu orders bursts and close frames on conn: nothing follows a
	// close frame sent through writeClose.
	wireMu    sync.Mutex
	closeSent bool

	errMu sync.Mutex
	err   error // why ws ended: the first failure seen
}

// fail records why the websocket ended, unless something else did first,
// and closes it so the other users of ws stop too.
func (a *attachment) fail(err error) {
	a.errMu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.errMu.Unlock()
	a.ws.Close()
}

// Serve carries the stream over ws until ws fails or the stream ends. It
// returns nil when the stream is finished (closed by either side); any
// other error means ws broke and the stream can Resume on a new websocket,
// or be Aborted. The handshake (CONNECT_SUCCESS_SID or
// RECONNECT_SUCCESS_ACK) must be done before Serve. Serve closes ws.
func (s *Stream) Serve(ws *websocket.Conn) error {
	ws.SetReadLimit(MaxMessage)
	a := &attachment{ws: ws, conn: ws.NetConn(), b: findBatcher(ws.NetConn()), stop: make(chan struct{})}
	if a.b == nil {
		a.b = noBatch{}
	}
	a.gather = any(a.b) != any(a.conn)
	// As gorilla's own handler answers, but ordered after our bursts.
	ws.SetCloseHandler(func(code int, _ string) error {
		a.writeClose(code, "", time.Second)
		return nil
	})
	s.mu.Lock()
	if s.att != nil || s.finished {
		s.mu.Unlock()
		ws.Close()
		return errors.New("iap: serve of a stream that is being served or is finished")
	}
	s.att = a
	s.awaiting = false // a new websocket: nothing sent on it yet
	s.mu.Unlock()

	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		if err := s.writeLoop(a); err != nil {
			a.fail(err)
		}
	}()
	adone := make(chan struct{})
	s.mu.Lock()
	ackTimeout := s.ackTimeout
	s.mu.Unlock()
	go func() {
		defer close(adone)
		if ackTimeout > 0 {
			s.watchRelay(a, ackTimeout)
		}
	}()
	if a.b.setOnRead(s.burstDone) {
		s.mu.Lock()
		s.coalesce = true
		s.mu.Unlock()
	}
	err := s.readLoop(a)
	a.b.setOnRead(nil)
	s.flushPend()
	s.mu.Lock()
	s.coalesce = false
	s.mu.Unlock()
	var pe *ProtocolError
	if errors.As(err, &pe) {
		a.writeClose(pe.Code, pe.Msg, time.Second)
	}
	a.fail(err)
	close(a.stop)
	<-wdone
	<-adone
	// Wait out a Write sending on ws; it fails at once now ws is closed.
	s.sendMu.Lock()
	defer s.sendMu.Unlock()

	if buf := a.buf; buf != nil {
		a.buf = nil
		bursts.Put(&buf)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.wakeAll()
	s.att = nil
	first := a.err
	var ce *websocket.CloseError
	switch {
	case s.finished:
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

// bursts and messages hold the buffers of websockets that ended, for the
// next: a fleet opens a tunnel per node.
var (
	bursts   = sync.Pool{New: func() any { b := make([]byte, 0, batchSize); return &b }}
	messages = sync.Pool{New: func() any { b := make([]byte, MaxMessage); return &b }}
)

// readLoop reads relay messages until ws fails or the stream ends.
func (s *Stream) readLoop(a *attachment) error {
	bp := messages.Get().(*[]byte)
	defer messages.Put(bp)
	buf := *bp
	for {
		typ, r, err := a.ws.NextReader()
		if err != nil {
			return ReadError(err)
		}
		if typ != websocket.BinaryMessage {
			return protocolErrorf(CodeInvalidWebsocketOpcode, "text message, want binary")
		}
		n, err := readMessage(r, buf)
		if err != nil {
			return ReadError(err)
		}
		s.heard.Add(1)
		if err := s.handle(buf[:n], a.stop); err != nil {
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
		if len(f.Data) == 0 {
			return nil
		}
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

// ReadError is err from reading a websocket, with a message over
// MaxMessage made a protocol error: the peer would send it again after a
// resume.
func ReadError(err error) error {
	if errors.Is(err, websocket.ErrReadLimit) {
		return protocolErrorf(CodeInvalidData, "relay message over %d bytes", MaxMessage)
	}
	return err
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

// deliver hands a DATA payload to WriteTo's writer, or stores it for Read,
// waiting for room. Once the stream is shut down the payload is dropped,
// but still counted and acknowledged, so the peer can finish. Only the
// websocket reader calls it.
func (s *Stream) deliver(p []byte, stop <-chan struct{}) error {
	for {
		s.mu.Lock()
		if s.sink != nil && s.coalesce && !s.closing {
			// Gathered, and written to the sink when the burst is done.
			s.mu.Unlock()
			if len(s.pend)+len(p) > cap(s.pend) {
				s.flushPend()
			}
			if s.pend == nil {
				s.pend = make([]byte, 0, pendMax)
			}
			s.pend = append(s.pend, p...)
			return nil
		}
		s.mu.Unlock()
		s.flushPend() // keep the order when the sink goes away
		s.mu.Lock()
		var k int
		switch {
		case s.closing || s.finished:
			k = len(p)
		case s.sink != nil:
			k = s.writeSink(p)
		default:
			k = s.in.write(p, recvBuffer)
		}
		s.received(k)
		s.mu.Unlock()
		if k > 0 {
			notify(s.readable)
		}
		if p = p[k:]; len(p) == 0 {
			return nil
		}
		if k > 0 {
			continue // the sink failed: the rest goes to in
		}
		select {
		case <-s.inRoom:
		case <-s.shut:
		case <-stop:
			return errStopped
		}
	}
}

// pendMax bounds the payload gathered for the sink in one burst.
const pendMax = 256 << 10

// writeSink writes p to the sink, unlocking s.mu meanwhile, and returns how
// much it took. A failed sink is removed and WriteTo told. Call with s.mu
// held and s.sink set.
func (s *Stream) writeSink(p []byte) int {
	w := s.sink
	s.sinkBusy = true
	s.mu.Unlock()
	m, err := w.Write(p)
	s.mu.Lock()
	s.sinkBusy = false
	notify(s.sinkIdle)
	s.sinkN += int64(m)
	if err != nil {
		s.sinkErr = err
		s.sink = nil
		s.endSinkLocked()
	}
	return m
}

// flushPend writes the gathered payload to the sink, or, if the sink went
// away meanwhile, to in (beyond its bound by at most pendMax, since the
// reader cannot wait here) or nowhere once shut down.
func (s *Stream) flushPend() {
	for len(s.pend) > 0 {
		s.mu.Lock()
		var k int
		switch {
		case s.closing || s.finished:
			k = len(s.pend)
		case s.sink != nil:
			k = s.writeSink(s.pend)
		default:
			k = s.in.write(s.pend, s.in.len()+len(s.pend))
		}
		s.received(k)
		s.mu.Unlock()
		notify(s.readable)
		s.pend = s.pend[:copy(s.pend, s.pend[k:])]
	}
}

// burstDone runs before the websocket reader reads from the network again:
// what it gathered for the sink goes out, and an ACK is asked for if one is
// due, once per burst rather than once per threshold crossed.
func (s *Stream) burstDone() {
	s.flushPend()
	s.mu.Lock()
	if s.recvd-s.ackSent >= ackThreshold {
		notify(s.sendDue)
	}
	s.mu.Unlock()
}

// received counts k bytes in and sees to their acknowledgement: past the
// threshold at the end of the burst (or at once without burst hooks), else
// after ackDelay unless a write carries it first. Call with s.mu held.
func (s *Stream) received(k int) {
	if k == 0 {
		return
	}
	s.recvd += uint64(k)
	if s.recvd-s.ackSent >= ackThreshold {
		if !s.coalesce {
			notify(s.sendDue)
		}
	} else if !s.ackArmed {
		s.ackArmed = true
		s.ackTimer.Reset(ackDelay)
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
		notify(s.sendDue)
	}
	return nil
}

// writeLoop sends what Writes leave to it (resends after a Resume, ACKs,
// bytes queued while another goroutine was writing) and the close frame at
// the end. It returns nil when the attachment stops.
func (s *Stream) writeLoop(a *attachment) error {
	for {
		s.sendMu.Lock()
		closeNow, err := s.send(a, true)
		s.sendMu.Unlock()
		if err != nil {
			return writeErr(err, a.stop)
		}
		if closeNow {
			if err := a.writeClose(websocket.CloseNormalClosure, "", CloseWait); err != nil {
				return writeErr(err, a.stop)
			}
			// The reader waits for the peer's close frame, not forever.
			a.ws.SetReadDeadline(time.Now().Add(CloseWait))
			<-a.stop
			return nil
		}
		select {
		case <-s.sendDue:
		case <-s.lingerC():
		case <-a.stop:
			return nil
		}
	}
}

// lingerC is closed once Shutdown's linger ran out; nil before Shutdown.
func (s *Stream) lingerC() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lingered
}

// send writes everything due on a's websocket: an ACK if one is owed, and
// DATA until nothing queued is unsent, in bursts of up to batchSize bytes.
// With mayClose it reports whether the close frame is due: shutting down,
// all sent and acknowledged (or linger over). Call with sendMu held.
func (s *Stream) send(a *attachment, mayClose bool) (closeNow bool, err error) {
	if a.buf == nil {
		a.buf = (*bursts.Get().(*[]byte))[:0]
	}
	defer func() {
		if ferr := a.flush(); err == nil {
			err = ferr
		}
	}()
	for {
		if cap(a.buf)-len(a.buf) < maxWireMessage {
			if err := a.flush(); err != nil {
				return false, err
			}
		}
		s.mu.Lock()
		if s.att != a {
			s.mu.Unlock()
			return false, nil
		}
		end := s.acked + uint64(s.out.len())
		owed := s.recvd - s.ackSent
		n := int(min(end-s.sent, MaxDataLen))
		ack := owed > 0 && (n > 0 || s.ackIdle || owed >= ackThreshold)
		if ack {
			s.ackSent, s.ackIdle = s.recvd, false
			p := a.beginMessage(ackLen)
			a.buf = AppendAck(a.buf, s.ackSent)
			a.endMessage(p)
		}
		if n > 0 {
			p := a.beginMessage(DataHeaderLen + n)
			a.buf = AppendDataHeader(a.buf, n)
			k := len(a.buf)
			a.buf = a.buf[:k+n]
			s.out.copyAt(a.buf[k:], int(s.sent-s.acked))
			// Counted as sent before it is written, so that an ACK racing
			// the write is not taken for one beyond what was sent.
			s.sent += uint64(n)
			s.sentData()
			a.endMessage(p)
		}
		if mayClose && !ack && n == 0 && s.closing && !s.closeSent && (s.acked == end || isClosed(s.lingered)) {
			s.closeSent, closeNow = true, true
		}
		s.mu.Unlock()
		if !ack && n == 0 {
			return closeNow, nil
		}
	}
}

// flush writes the burst built so far in one Write, unless a close frame
// went out already (gorilla's own, sent when the peer breaks the websocket
// protocol, is not seen here; the websocket is closed right after it).
func (a *attachment) flush() error {
	if len(a.buf) == 0 {
		return nil
	}
	a.wireMu.Lock()
	defer a.wireMu.Unlock()
	defer func() { a.buf = a.buf[:0] }()
	if a.closeSent {
		return websocket.ErrCloseSent
	}
	// gorilla leaves the deadline of its last control frame on conn.
	a.conn.SetWriteDeadline(time.Time{})
	if !a.gather {
		_, err := a.conn.Write(a.buf)
		return err
	}
	a.b.hold()
	_, err := a.conn.Write(a.buf)
	if rerr := a.b.release(); err == nil {
		err = rerr
	}
	return err
}

// writeClose sends a close frame, after any burst being written, and stops
// bursts from following it.
func (a *attachment) writeClose(code int, text string, wait time.Duration) error {
	a.wireMu.Lock()
	defer a.wireMu.Unlock()
	a.closeSent = true
	return a.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(wait))
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

//go:build unix

package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// A tunnel session: the TCP connection to the node port and the two byte
// streams, carried by one websocket at a time. The relay keeps the node's
// bytes until the client acknowledges them, so that a client resuming on a
// new websocket (/v4/reconnect?sid=&ack=) gets them again from where it
// says it is. The client's bytes go into a buffer the node is written from,
// and the relay tells the client how many it has (ACK, and
// RECONNECT_SUCCESS_ACK on a resume). Both buffers are bounded: past
// relayWindow the relay stops reading that side.

const (
	// detachedTimeout is how long a session whose websocket broke waits
	// for a reconnect before it closes the node connection.
	detachedTimeout = 30 * time.Second
	// claimWait is how long a reconnect waits for the session's previous
	// websocket to be seen dead before answering 4002: a client may notice
	// a broken connection before the relay does.
	claimWait = time.Second
	// closeLinger bounds the wait for the client to acknowledge the last
	// bytes of a node port that closed, before the relay closes with 4010.
	closeLinger = 5 * time.Second
	// closeReplyWait bounds the wait for the client's answer to the
	// relay's close frame.
	closeReplyWait = 2 * time.Second
	// relayWindow bounds the node's bytes kept for the client (past it
	// the relay stops reading the node until the client acknowledges) and
	// the client's waiting for the node (past it the relay stops reading
	// the websocket), so that a slow node slows the client down without
	// stopping the relay's reads at once.
	relayWindow = 2 << 20
	// relayBurst bounds the DATA frames built and sent in one go.
	relayBurst = 16
	// relayNodeRead and relayNodeWrite bound one read from and one write
	// to the node.
	relayNodeRead  = 64 << 10
	relayNodeWrite = 256 << 10
	// lazyAckBytes is what a lazy relay (Faults.AckIdle) lets the client
	// send before it acknowledges.
	lazyAckBytes = 32 << 10
	// relayReadLimit bounds a client's message: a DATA frame of 16384
	// bytes is 16390; larger ones up to this get 4013, not gorilla's 1009.
	relayReadLimit = 64 << 10
)

type relaySession struct {
	sid     string
	target  string // NODE:PORT, for logs
	node    net.Conn
	ackIdle time.Duration // Faults.AckIdle when the tunnel opened
	logf    func(string, ...any)
	next    chan *websocket.Conn // a reconnect hands over its websocket
	done    chan struct{}        // closed when the session ends
	wake    chan struct{}        // the websocket writer has work
	room    chan struct{}        // the node reader may read again
	upReady chan struct{}        // the node writer has work
	upRoom  chan struct{}        // the websocket reader may queue again

	mu sync.Mutex
	// Node to client: down holds the node's bytes from offset downAcked,
	// what the client acknowledged, on. downSent is how far the attached
	// websocket got; downHigh the furthest any did.
	down      byteQueue
	downAcked uint64
	downSent  uint64
	downHigh  uint64
	nodeEOF   time.Time // when the node closed its end; zero while open
	// Client to node: up holds what the client sent that the node has
	// not taken yet.
	up          byteQueue
	upRecvd     uint64    // DATA payload bytes received from the client
	upAcked     uint64    // what the relay last told the client it has
	upLast      time.Time // when DATA last came
	upPaused    bool      // the reader handled all it had read: acknowledge
	writeFailed bool      // writing to the node failed while it was open
	// The websocket.
	ws        *websocket.Conn // attached, or being handed over when claimed
	claimed   bool
	free      chan struct{} // closed when the claimed websocket is let go
	closeSent bool          // the relay closed the attached websocket
	ended     bool
}

func newRelaySession(sid, target string, node net.Conn, ackIdle time.Duration, logf func(string, ...any)) *relaySession {
	return &relaySession{
		sid: sid, target: target, node: node, ackIdle: ackIdle, logf: logf,
		next:    make(chan *websocket.Conn),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		room:    make(chan struct{}, 1),
		upReady: make(chan struct{}, 1),
		upRoom:  make(chan struct{}, 1),
		// The connect handler holds the first websocket.
		claimed: true,
		free:    make(chan struct{}),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run carries the session over ws, and over the websockets reconnects hand
// over, until it ends. ws may be nil when the first websocket failed at once.
func (rl *relay) run(ss *relaySession, ws *websocket.Conn) {
	defer rl.wg.Done()
	var nodeIO sync.WaitGroup
	nodeIO.Go(ss.readNode)
	nodeIO.Go(ss.writeNode)
	for ws != nil {
		over := ss.serve(ws)
		ss.release()
		if over {
			// Let the node take what the client sent last.
			ss.drainUp(closeLinger)
			break
		}
		ss.logf("iap: tunnel %s lost its websocket; waiting %v for a reconnect", ss.sid, detachedTimeout)
		ws = ss.waitReconnect(rl.closing())
	}
	ss.end()
	nodeIO.Wait()
	rl.mu.Lock()
	delete(rl.sessions, ss.sid)
	rl.mu.Unlock()
	ss.logf("iap: tunnel %s to %s ended", ss.sid, ss.target)
}

// end ends the session: the node connection and any websocket close.
func (ss *relaySession) end() {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	ss.ended = true
	ws := ss.ws
	ss.mu.Unlock()
	close(ss.done)
	ss.node.Close()
	if ws != nil {
		ws.Close()
	}
}

func (ss *relaySession) waitReconnect(closing <-chan struct{}) *websocket.Conn {
	t := time.NewTimer(detachedTimeout)
	defer t.Stop()
	select {
	case ws := <-ss.next:
		return ws
	case <-t.C:
	case <-closing:
	}
	return nil
}

// claim reserves the session for a reconnect's websocket, waiting up to
// wait for the previous one to be let go.
func (ss *relaySession) claim(wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		ss.mu.Lock()
		if ss.ended {
			ss.mu.Unlock()
			return false
		}
		if !ss.claimed {
			ss.claimed = true
			ss.free = make(chan struct{})
			ss.mu.Unlock()
			return true
		}
		free := ss.free
		ss.mu.Unlock()
		select {
		case <-free:
		case <-t.C:
			return false
		case <-ss.done:
			return false
		}
	}
}

// release lets go of the claimed websocket.
func (ss *relaySession) release() {
	ss.mu.Lock()
	if ss.claimed {
		ss.claimed = false
		ss.ws = nil
		close(ss.free)
	}
	ss.mu.Unlock()
}

// errRewind is a resume from where the relay cannot replay.
var errRewind = errors.New("failed to rewind")

// rewind prepares a claimed session for a client that holds ack bytes of
// the node's stream, and returns how many of the client's the relay has.
func (ss *relaySession) rewind(ack uint64) (uint64, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ack < ss.downAcked || ack > ss.downHigh {
		return 0, fmt.Errorf("%w: resume at byte %d, but only bytes %d to %d are kept", errRewind, ack, ss.downAcked, ss.downHigh)
	}
	ss.down.drop(int(ack - ss.downAcked))
	ss.downAcked, ss.downSent = ack, ack
	ss.upAcked = ss.upRecvd // RECONNECT_SUCCESS_ACK says so
	signal(ss.room)
	return ss.upRecvd, nil
}

// readNode reads the node's bytes into down, at most relayWindow of them
// unacknowledged, until the node closes its end or the session ends.
func (ss *relaySession) readNode() {
	// Most tunnels carry a few kilobytes: the buffer starts small and
	// grows to relayNodeRead once reads fill it.
	buf := make([]byte, 4<<10)
	for {
		ss.mu.Lock()
		full := ss.down.len() >= relayWindow
		ss.mu.Unlock()
		if full {
			select {
			case <-ss.room:
			case <-ss.done:
				return
			}
			continue
		}
		n, err := ss.node.Read(buf)
		ss.mu.Lock()
		ss.down.push(buf[:n])
		if err != nil && !ss.ended {
			ss.nodeEOF = time.Now()
			if err != io.EOF {
				ss.logf("iap: tunnel %s: node read: %v", ss.sid, err)
			}
		}
		ss.mu.Unlock()
		signal(ss.wake)
		if err != nil {
			return
		}
		if n == len(buf) && len(buf) < relayNodeRead {
			buf = make([]byte, min(4*len(buf), relayNodeRead))
		}
	}
}

// serve carries the session over ws until ws breaks (false: wait for a
// reconnect) or the tunnel is over (true): either side closed it, or the
// client broke the protocol.
func (ss *relaySession) serve(ws *websocket.Conn) bool {
	ws.SetReadLimit(relayReadLimit)
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		ws.Close()
		return true
	}
	ss.ws, ss.closeSent = ws, false
	ss.mu.Unlock()
	wc, _ := ws.NetConn().(*wireConn)
	if wc != nil {
		wc.onRead = ss.readPause
		defer func() { wc.onRead = nil }()
	}
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	gone := make(chan struct{}) // closed when the writer stops
	go func() {
		defer close(gone)
		err := ss.writeLoop(ws, stop)
		if err != nil {
			ws.Close() // the reader may be waiting on a dead connection
		}
		wrote <- err
	}()

	code, reason, err := ss.readLoop(ws, gone)
	if code != 0 {
		ss.logf("iap: tunnel %s: closing with %d %s", ss.sid, code, reason)
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeReplyWait))
	}
	close(stop)
	// The writer sends what it has built, any close frame included, then
	// stops; a client that reads nothing more cannot hold it up for long.
	t := time.AfterFunc(closeReplyWait, func() { ws.Close() })
	werr := <-wrote
	t.Stop()
	ws.Close()

	ss.mu.Lock()
	closeSent := ss.closeSent
	ss.mu.Unlock()
	var ce *websocket.CloseError
	switch {
	case code != 0, closeSent, errors.Is(err, websocket.ErrReadLimit):
		// The relay closed the tunnel (gorilla did, with 1009, for a
		// message over the read limit).
		return true
	case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure:
		// The client closed the tunnel; what it sent was written already.
		return true
	}
	if werr != nil {
		err = werr
	}
	ss.logf("iap: tunnel %s: websocket broke: %v", ss.sid, err)
	return false
}

// readLoop handles the client's messages until the websocket fails (err)
// or the relay must close it (code and reason).
func (ss *relaySession) readLoop(ws *websocket.Conn, stop <-chan struct{}) (code int, reason string, err error) {
	// Grown to the largest message yet, not to the read limit at once:
	// most tunnels carry a few kilobytes.
	var msg bytes.Buffer
	for {
		typ, r, err := ws.NextReader()
		if err != nil {
			return 0, "", err
		}
		if typ != websocket.BinaryMessage {
			return closeInvalidWebsocketOpcode, "binary messages only", nil
		}
		msg.Reset()
		if _, err := msg.ReadFrom(r); err != nil {
			return 0, "", err // gorilla's read limit stops a longer one
		}
		f, err := parseClientFrame(msg.Bytes())
		if err != nil {
			return closeInvalidData, err.Error(), nil
		}
		switch f.tag {
		case tagData:
			if !ss.queueUp(f.payload, stop) {
				return 0, "", errStopped
			}
		case tagAck:
			if err := ss.acked(f.ack); err != nil {
				return closeBadAck, err.Error(), nil
			}
		}
		// Other tags are skipped, as the protocol asks of readers.
	}
}

// queueUp queues a client's payload for the node and counts it, waiting
// for room; false when stop or the session's end came first. Once the node closed its end,
// payloads are dropped, but counted, so the client can finish.
func (ss *relaySession) queueUp(p []byte, stop <-chan struct{}) bool {
	for {
		ss.mu.Lock()
		if ss.up.len() < relayWindow || !ss.nodeEOF.IsZero() || ss.writeFailed {
			if ss.nodeEOF.IsZero() && !ss.writeFailed {
				ss.up.push(p)
			}
			ss.upRecvd += uint64(len(p))
			ss.upLast = time.Now()
			ss.mu.Unlock()
			signal(ss.upReady)
			signal(ss.wake)
			return true
		}
		ss.mu.Unlock()
		select {
		case <-ss.upRoom:
		case <-stop:
			return false
		case <-ss.done:
			return false
		}
	}
}

var errStopped = errors.New("the websocket's writer stopped")

// writeNode writes the client's bytes to the node until the session ends.
// A failed write, while the node's end is open, closes the tunnel with
// 4009.
func (ss *relaySession) writeNode() {
	var buf []byte // grows to the most queued at once, at most relayNodeWrite
	for {
		ss.mu.Lock()
		n := min(ss.up.len(), relayNodeWrite)
		buf = append(buf[:0], ss.up.slice(0, n)...)
		ss.mu.Unlock()
		if n == 0 {
			select {
			case <-ss.upReady:
				continue
			case <-ss.done:
				return
			}
		}
		_, err := ss.node.Write(buf[:n])
		ss.mu.Lock()
		if err != nil && ss.nodeEOF.IsZero() && !ss.ended {
			ss.logf("iap: tunnel %s: node write: %v", ss.sid, err)
			ss.writeFailed = true
		}
		if err != nil {
			n = ss.up.len() // nothing more reaches the node
		}
		ss.up.drop(n)
		ss.mu.Unlock()
		signal(ss.upRoom)
		signal(ss.wake)
		if err != nil {
			return
		}
	}
}

// drainUp waits up to wait for the node to take the client's bytes.
func (ss *relaySession) drainUp(wait time.Duration) {
	deadline := time.Now().Add(wait)
	for {
		ss.mu.Lock()
		empty := ss.up.len() == 0 || ss.writeFailed
		ss.mu.Unlock()
		if empty || !time.Now().Before(deadline) {
			return
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ss.upRoom:
		case <-t.C:
		}
		t.Stop()
	}
}

// readPause runs when the websocket reader is about to wait for the
// network: everything read so far was handled, so an ACK is due.
func (ss *relaySession) readPause() {
	ss.mu.Lock()
	due := ss.upRecvd > ss.upAcked && !ss.upPaused
	ss.upPaused = ss.upPaused || due
	ss.mu.Unlock()
	if due {
		signal(ss.wake)
	}
}

// acked applies the client's ACK of n bytes of the node's stream.
func (ss *relaySession) acked(n uint64) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case n < ss.downAcked:
		return fmt.Errorf("ACK went back from %d to %d", ss.downAcked, n)
	case n > ss.downSent:
		return fmt.Errorf("ACK of %d bytes, %d sent", n, ss.downSent)
	}
	ss.down.drop(int(n - ss.downAcked))
	ss.downAcked = n
	signal(ss.room)
	signal(ss.wake) // the close may be due
	return nil
}

// writeLoop sends ACKs and the node's bytes on ws until stop, and the
// close frame once the node closed and the client has everything.
func (ss *relaySession) writeLoop(ws *websocket.Conn, stop <-chan struct{}) error {
	wc, _ := ws.NetConn().(*wireConn)
	var frames [][]byte
	// buf grows by append to the largest burst yet (at most relayBurst
	// DATA frames and an ACK), not to that at once: most tunnels carry a
	// few kilobytes. A frame already in frames keeps the array it was
	// built in.
	var buf []byte
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		frames, buf = frames[:0], buf[:0]
		ss.mu.Lock()
		if ss.ws != ws {
			ss.mu.Unlock()
			return nil
		}
		now := time.Now()
		ack, ackAt := ss.ackDue(now)
		if ack {
			ss.upAcked, ss.upPaused = ss.upRecvd, false
			start := len(buf)
			buf = appendAckFrame(buf, ss.upAcked)
			frames = append(frames, buf[start:])
		}
		for len(frames) < relayBurst+1 {
			n := min(ss.downAcked+uint64(ss.down.len())-ss.downSent, relayMaxData)
			if n == 0 {
				break
			}
			start := len(buf)
			buf = appendDataHeader(buf, int(n))
			buf = append(buf, ss.down.slice(int(ss.downSent-ss.downAcked), int(n))...)
			frames = append(frames, buf[start:])
			ss.downSent += n
			ss.downHigh = max(ss.downHigh, ss.downSent)
		}
		closeCode, closeAt := ss.closeDue(now)
		if closeCode != 0 {
			ss.closeSent = true
		}
		ss.mu.Unlock()

		if len(frames) > 0 {
			wc.cork()
			var err error
			for _, f := range frames {
				if err = ws.WriteMessage(websocket.BinaryMessage, f); err != nil {
					break
				}
			}
			if uerr := wc.uncork(); err == nil {
				err = uerr
			}
			if err != nil {
				return err
			}
		}
		if closeCode != 0 {
			reason := "destination read failed"
			if closeCode == closeDestinationWriteFailed {
				reason = "destination write failed"
			}
			ws.SetReadDeadline(time.Now().Add(closeReplyWait))
			return ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(closeCode, reason), time.Now().Add(closeReplyWait))
		}
		if len(frames) > relayBurst {
			continue // more may be queued
		}
		var fire <-chan time.Time
		if next := earliest(ackAt, closeAt); !next.IsZero() {
			timer.Reset(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ss.wake:
		case <-fire:
		case <-stop:
			return nil
		}
		timer.Stop()
	}
}

// ackDue reports whether an ACK is due now, else when it will be (zero:
// not until more DATA comes). By default once the websocket reader has
// handled what it read (an ACK a burst, not a frame) or lazyAckBytes are
// owed; with Faults.AckIdle only once lazyAckBytes are owed or the client
// sent nothing for that long. Call with mu held.
func (ss *relaySession) ackDue(now time.Time) (bool, time.Time) {
	owed := ss.upRecvd - ss.upAcked
	switch {
	case owed == 0:
		return false, time.Time{}
	case owed >= lazyAckBytes:
		return true, time.Time{}
	case ss.ackIdle <= 0:
		return ss.upPaused, time.Time{}
	}
	at := ss.upLast.Add(ss.ackIdle)
	return !now.Before(at), at
}

// closeDue returns the code to close the tunnel with now, if any: 4009
// once writing to the node failed; 4010 once the node closed its end and
// the client acknowledged all of it, or was sent all of it closeLinger
// ago. Else it returns when the linger runs out. Call with mu held.
func (ss *relaySession) closeDue(now time.Time) (int, time.Time) {
	switch {
	case ss.closeSent:
		return 0, time.Time{}
	case ss.writeFailed:
		return closeDestinationWriteFailed, time.Time{}
	case ss.nodeEOF.IsZero():
		return 0, time.Time{}
	}
	end := ss.downAcked + uint64(ss.down.len())
	if ss.downAcked == end {
		return closeDestinationReadFailed, time.Time{}
	}
	if ss.downSent < end {
		return 0, time.Time{}
	}
	at := ss.nodeEOF.Add(closeLinger)
	if now.Before(at) {
		return 0, at
	}
	return closeDestinationReadFailed, time.Time{}
}

// earliest is the earlier of two times, ignoring zeros.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// byteQueue is a FIFO of bytes: push at the back, drop from the front.
type byteQueue struct {
	b   []byte
	off int
}

func (q *byteQueue) len() int { return len(q.b) - q.off }

func (q *byteQueue) push(p []byte) {
	if q.off > 0 && q.off >= len(q.b)/2 {
		q.b = q.b[:copy(q.b, q.b[q.off:])]
		q.off = 0
	}
	q.b = append(q.b, p...)
}

func (q *byteQueue) drop(n int) {
	q.off += n
	if q.off == len(q.b) {
		q.b, q.off = q.b[:0], 0
	}
}

// slice returns n bytes from offset from; valid until the next push.
func (q *byteQueue) slice(from, n int) []byte { return q.b[q.off+from : q.off+from+n] }

// wireConn is the connection under a relay websocket. While corked, its
// writes (gorilla's, frame by frame, control frames included, in order)
// gather in a buffer that uncork sends in one system call: at 16 KiB a
// frame, a call per frame is most of the cost of a bulk transfer. Before
// each read it runs onRead, set by the reader: gorilla reads from it only
// when it has handled all it buffered.
type wireConn struct {
	net.Conn
	onRead func()
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *wireConn) Read(p []byte) (int, error) {
	if c.onRead != nil {
		c.onRead()
	}
	return c.Conn.Read(p)
}

func (c *wireConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *wireConn) cork() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *wireConn) uncork() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

//go:build unix

package emulator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gkessh/gkessh/internal/iap"
)

// The IAP relay: /v4/connect opens a tunnel to a node port, /v4/reconnect
// resumes one on a new websocket. Each tunnel is a session holding an
// iap.Stream, the same protocol engine the client uses, and the TCP
// connection to the node's port. A session whose websocket broke waits
// detachedTimeout for a reconnect before it closes that connection.

const (
	detachedTimeout = 30 * time.Second
	// claimWait is how long a reconnect waits for the session's previous
	// websocket to be seen dead before answering 4002: a client may notice
	// a broken connection before the relay does.
	claimWait = time.Second
	// shutdownLinger bounds the wait for the client to acknowledge the last
	// bytes from a node port that closed.
	shutdownLinger     = 5 * time.Second
	backendDialTimeout = 5 * time.Second
	relayBuffer        = 256 << 10
)

var iapUpgrader = websocket.Upgrader{
	ReadBufferSize:  relayBuffer,
	WriteBufferSize: relayBuffer,
	Subprotocols:    []string{iap.Subprotocol},
	// IAP clients send Origin: bot:iap-tunneler, which is no web origin.
	CheckOrigin: func(*http.Request) bool { return true },
}

// relay is the live tunnel sessions. Its zero value is ready.
type relay struct {
	mu       sync.Mutex
	sessions map[string]*iapSession // by SID
	closed   bool
	shut     chan struct{}  // closed by close
	wg       sync.WaitGroup // one per session goroutine
}

// closing returns a channel closed when the relay closes.
func (rl *relay) closing() <-chan struct{} {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.shut == nil {
		rl.shut = make(chan struct{})
	}
	return rl.shut
}

// iapSession is one tunnel.
type iapSession struct {
	sid     string
	target  string // for logs
	stream  *iap.Stream
	backend net.Conn
	next    chan *websocket.Conn // a reconnect hands over its websocket
	done    chan struct{}        // closed when the session ends

	mu       sync.Mutex
	attached bool          // a websocket is attached or being handed over
	free     chan struct{} // closed when the attached websocket is let go
}

// ForwardPort makes the relay forward tunnels to port of the node to addr,
// a local TCP address; an empty addr stops that. Port 22 always goes to the
// node's SSH server.
func (n *Node) ForwardPort(port int, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr == "" {
		delete(n.ports, port)
		return
	}
	n.ports[port] = addr
}

// backendAddr is where a tunnel to port goes, "" when IAP could not reach
// it: no firewall rule, VM not running, or nothing listening.
func (n *Node) backendAddr(port int) string {
	n.mu.Lock()
	reachable := n.firewall && n.status == "RUNNING"
	addr := n.ports[port]
	n.mu.Unlock()
	if !reachable {
		return ""
	}
	if port == 22 {
		// Port 22 also obeys the project's firewall rules; other
		// forwarded ports only the switch above.
		n.mu.Lock()
		tags := slices.Clone(n.tags)
		n.mu.Unlock()
		if !n.srv.iapAdmits(tags, 22) {
			return ""
		}
		return n.SSHAddr()
	}
	return addr
}

// serveIAP upgrades to a relay websocket, then opens or resumes a tunnel.
// As with IAP, refusals after the upgrade are close frames.
func (s *Server) serveIAP(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(websocket.Subprotocols(r), iap.Subprotocol) {
		http.Error(w, "websocket subprotocol "+iap.Subprotocol+" required", http.StatusBadRequest)
		return
	}
	reconnect := strings.HasSuffix(r.URL.Path, "/reconnect")
	s.mu.Lock()
	h := relayHijacker{ResponseWriter: w, drop: s.faults.DropAfterBytes}
	if !reconnect {
		h.silent = s.faults.SilentAfterBytes
	}
	s.mu.Unlock()
	ws, err := iapUpgrader.Upgrade(h, r, nil)
	if err != nil {
		s.cfg.Logf("iap %s: upgrade: %v", r.URL.Path, err)
		return // Upgrade answered with an HTTP error
	}
	s.tunnels.Add(1)
	s.countBy("tunnel", s.bearerGrant(r))
	if reconnect {
		s.reconnectIAP(ws, r)
		return
	}
	s.connectIAP(ws, r)
}

// refuse closes ws with an IAP close code, waiting briefly for the client's
// answer so the close frame is not lost to a reset.
func (s *Server) refuse(ws *websocket.Conn, r *http.Request, code int, reason string) {
	s.cfg.Logf("iap %s?%s: %d %s", r.URL.Path, r.URL.RawQuery, code, reason)
	deadline := time.Now().Add(time.Second)
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
	ws.SetReadDeadline(deadline)
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	ws.Close()
}

// iapAuthorized reports whether the request's bearer token is live, may
// use project and holds IAP's tunnel permission
// (roles/iap.tunnelResourceAccessor grants it).
func (s *Server) iapAuthorized(r *http.Request, project string) bool {
	g := s.bearerGrant(r)
	return g != nil && g.projects[project] && g.can("iap.tunnelInstances.accessViaIAP")
}

func (s *Server) connectIAP(ws *websocket.Conn, r *http.Request) {
	q := r.URL.Query()
	project, zone, name := q.Get("project"), q.Get("zone"), q.Get("instance")
	if !s.iapAuthorized(r, project) {
		s.refuse(ws, r, iap.CodeNotAuthorized, "not authorized")
		return
	}
	n := s.Node(name)
	if project != s.cfg.Project || n == nil || n.Zone != zone || (q.Has("interface") && q.Get("interface") != "nic0") {
		s.refuse(ws, r, iap.CodeLookupFailed, "Failed to lookup instance")
		return
	}
	port, err := strconv.Atoi(q.Get("port"))
	addr := ""
	if err == nil && port > 0 && port <= 65535 {
		addr = n.backendAddr(port)
	}
	var backend net.Conn
	if addr != "" {
		ctx, cancel := context.WithTimeout(r.Context(), backendDialTimeout)
		backend, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			s.cfg.Logf("iap: node %s port %d: %v", name, port, err)
		}
	}
	if backend == nil {
		s.refuse(ws, r, iap.CodeFailedToConnectToBackend, "failed to connect to backend")
		return
	}
	sess := &iapSession{
		sid:     "emu-" + randomHex(16),
		target:  fmt.Sprintf("%s:%d", name, port),
		stream:  iap.NewStream(iap.Relay),
		backend: iap.RawConn(backend),
		next:    make(chan *websocket.Conn),
		done:    make(chan struct{}),
		free:    make(chan struct{}),
	}
	sess.attached = true
	if !s.relay.add(sess) {
		backend.Close()
		s.refuse(ws, r, iap.CodeErrorUnknown, "relay shutting down")
		return
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, iap.AppendConnectSuccess(nil, sess.sid)); err != nil {
		// Serve fails at once and the session waits for a reconnect that
		// cannot come, as it would on IAP.
		s.cfg.Logf("iap: tunnel %s: %v", sess.sid, err)
	}
	s.cfg.Logf("iap: tunnel %s to %s", sess.sid, sess.target)
	s.relay.run(sess, ws, s.cfg.Logf)
}

func (s *Server) reconnectIAP(ws *websocket.Conn, r *http.Request) {
	q := r.URL.Query()
	if !s.iapAuthorized(r, s.cfg.Project) {
		s.refuse(ws, r, iap.CodeNotAuthorized, "not authorized")
		return
	}
	ack, err := strconv.ParseUint(q.Get("ack"), 10, 64)
	sess := s.relay.get(q.Get("sid"))
	if err != nil || sess == nil {
		s.refuse(ws, r, iap.CodeSIDUnknown, "sid unknown")
		return
	}
	if !sess.claim(claimWait) {
		s.refuse(ws, r, iap.CodeSIDInUse, "sid in use")
		return
	}
	if err := sess.stream.Resume(ack); err != nil {
		sess.release()
		s.refuse(ws, r, iap.CodeFailedToRewind, "failed to rewind")
		return
	}
	msg := iap.AppendReconnectSuccess(nil, sess.stream.Received())
	if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		sess.release()
		ws.Close()
		return
	}
	select {
	case sess.next <- ws:
		s.cfg.Logf("iap: tunnel %s resumed at byte %d", sess.sid, ack)
	case <-sess.done:
		s.refuse(ws, r, iap.CodeSIDUnknown, "sid unknown")
	}
}

// claim attaches a new websocket to the session, waiting up to wait for the
// previous one to be let go.
func (ss *iapSession) claim(wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		ss.mu.Lock()
		if !ss.attached {
			ss.attached = true
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

// release lets go of the attached websocket.
func (ss *iapSession) release() {
	ss.mu.Lock()
	if ss.attached {
		ss.attached = false
		close(ss.free)
	}
	ss.mu.Unlock()
}

func (rl *relay) add(ss *iapSession) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.closed {
		return false
	}
	if rl.sessions == nil {
		rl.sessions = map[string]*iapSession{}
	}
	rl.sessions[ss.sid] = ss
	rl.wg.Add(1)
	return true
}

func (rl *relay) get(sid string) *iapSession {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.sessions[sid]
}

// run relays between ss's websockets and its node connection until the
// tunnel ends, waiting out breaks for a reconnect. ws may be nil when the
// first websocket failed already.
func (rl *relay) run(ss *iapSession, ws *websocket.Conn, logf func(string, ...any)) {
	defer rl.wg.Done()
	st := ss.stream
	// Node output to the client; when the node closes its end, the tunnel
	// ends with 4010 as on IAP.
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		if _, err := copyBuffer(st, ss.backend); !errors.Is(err, net.ErrClosed) {
			st.Shutdown(iap.CodeDestinationReadFailed, "destination read failed", shutdownLinger)
		}
	}()
	// Client input to the node. The node connection closes when the stream
	// ends, after everything the client sent was written.
	downDone := make(chan struct{})
	go func() {
		defer close(downDone)
		_, err := st.WriteTo(ss.backend)
		if ne := (*net.OpError)(nil); errors.As(err, &ne) && ne.Op == "write" {
			st.Shutdown(iap.CodeDestinationWriteFailed, "destination write failed", shutdownLinger)
		}
		ss.backend.Close()
	}()

	clean := false
	for ws != nil {
		err := st.Serve(ws)
		ss.release()
		if err == nil {
			clean = true
			break
		}
		var pe *iap.ProtocolError
		if errors.As(err, &pe) {
			logf("iap: tunnel %s: %v", ss.sid, err)
			break
		}
		logf("iap: tunnel %s lost its websocket (%v); waiting %v for a reconnect", ss.sid, err, detachedTimeout)
		ws = ss.wait(rl)
	}
	if clean {
		// Let the node read what the client sent last.
		t := time.NewTimer(shutdownLinger)
		select {
		case <-downDone:
		case <-t.C:
		}
		t.Stop()
	}
	st.Abort(errors.New("tunnel ended"))
	ss.backend.Close()
	close(ss.done)
	<-upDone
	<-downDone
	rl.mu.Lock()
	delete(rl.sessions, ss.sid)
	rl.mu.Unlock()
	logf("iap: tunnel %s to %s ended", ss.sid, ss.target)
}

// wait returns the next websocket a reconnect hands over, or nil when none
// comes in time or the relay closes.
func (ss *iapSession) wait(rl *relay) *websocket.Conn {
	t := time.NewTimer(detachedTimeout)
	defer t.Stop()
	select {
	case ws := <-ss.next:
		return ws
	case <-t.C:
	case <-rl.closing():
	}
	return nil
}

// live counts the sessions, attached or waiting for a reconnect.
func (rl *relay) live() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.sessions)
}

// close ends every session and waits for them.
func (rl *relay) close() {
	rl.closing() // make shut
	rl.mu.Lock()
	if !rl.closed {
		close(rl.shut)
	}
	rl.closed = true
	sessions := make([]*iapSession, 0, len(rl.sessions))
	for _, ss := range rl.sessions {
		sessions = append(sessions, ss)
	}
	rl.mu.Unlock()
	for _, ss := range sessions {
		ss.stream.Abort(errors.New("emulator closed"))
		// Also unblocks a write to a node port that stopped reading.
		ss.backend.Close()
	}
	rl.wg.Wait()
}

// copyBuffer copies with a buffer big enough for a few DATA frames, and
// without ReadFrom/WriteTo detours that would pick smaller ones.
func copyBuffer(dst io.Writer, src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, relayBuffer))
}

// relayHijacker hands the websocket a connection whose frames the stream
// can send in bursts (iap.BatchConn), and which, with drop > 0, drops
// itself after drop bytes either way without a close frame
// (Faults.DropAfterBytes), or with silent > 0 goes silent after silent
// bytes (Faults.SilentAfterBytes).
type relayHijacker struct {
	http.ResponseWriter
	drop, silent int64
}

func (h relayHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if h.drop > 0 {
		dc := &dropConn{Conn: c}
		dc.left.Store(h.drop)
		c = dc
	}
	if h.silent > 0 {
		sc := &silentConn{Conn: c, gone: make(chan struct{})}
		sc.left.Store(h.silent)
		c = sc
	}
	return iap.BatchConn(c), rw, nil
}

type dropConn struct {
	net.Conn
	left atomic.Int64
}

func (c *dropConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.count(n)
	return n, err
}

func (c *dropConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.count(n)
	return n, err
}

func (c *dropConn) count(n int) {
	if c.left.Add(-int64(n)) <= 0 {
		c.Conn.Close()
	}
}

// silentConn passes bytes until left runs out, then goes silent: nothing
// it reads reaches the relay, which therefore never acknowledges again, and
// writes block. Reads still drain the socket, so that the relay sees the
// client close it (as a real relay would see a reset) and lets a reconnect
// take the session over; otherwise the relay would hold it forever.
type silentConn struct {
	net.Conn
	left     atomic.Int64
	gone     chan struct{} // closed when the connection is closed or ends
	goneOnce sync.Once
}

func (c *silentConn) Read(p []byte) (int, error) {
	if c.left.Load() > 0 {
		n, err := c.Conn.Read(p)
		c.left.Add(-int64(n))
		return n, err
	}
	for {
		if _, err := c.Conn.Read(p); err != nil {
			c.end()
			return 0, err
		}
	}
}

func (c *silentConn) Write(p []byte) (int, error) {
	if c.left.Load() > 0 {
		n, err := c.Conn.Write(p)
		c.left.Add(-int64(n))
		return n, err
	}
	<-c.gone
	return 0, net.ErrClosed
}

func (c *silentConn) Close() error {
	c.end()
	return c.Conn.Close()
}

func (c *silentConn) end() { c.goneOnce.Do(func() { close(c.gone) }) }

//go:build unix

package emulator

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The IAP relay: /v4/connect opens a tunnel to a node port, /v4/reconnect
// resumes one on a new websocket (iapsession.go). Refusals come as IAP
// sends them: after the websocket upgrade, as a close frame with IAP's
// code. The relay is the emulator's own reading of the protocol
// (iapframe.go), apart from gkessh's, so that it can catch gkessh's
// misreadings rather than share them.

// backendDialTimeout bounds the relay's dial of a node port.
const backendDialTimeout = 5 * time.Second

var iapUpgrader = websocket.Upgrader{
	ReadBufferSize:  64 << 10,
	WriteBufferSize: 32 << 10, // a whole DATA frame: one write each
	// A message's buffer is taken only while it is written: no 32 KiB
	// kept per tunnel.
	WriteBufferPool: new(sync.Pool),
	Subprotocols:    []string{relaySubprotocol},
	// IAP clients send Origin: bot:iap-tunneler, which is no web origin.
	CheckOrigin: func(*http.Request) bool { return true },
}

// relay is the live tunnel sessions. Its zero value is ready.
type relay struct {
	mu       sync.Mutex
	sessions map[string]*relaySession // by SID
	closed   bool
	shut     chan struct{}  // closed by close
	wg       sync.WaitGroup // one per session goroutine

	bucket    quota        // Faults.TunnelRate's websockets a second
	throttled atomic.Int64 // websockets refused with 429
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

// MarshalJSON writes Faults with AckIdle as a duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults
	v := struct {
		plain
		AckIdle string `json:"ackIdle,omitempty"`
	}{plain: plain(f)}
	if f.AckIdle != 0 {
		v.AckIdle = f.AckIdle.String()
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads Faults with AckIdle as a duration string.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	v := struct {
		*plain
		AckIdle string `json:"ackIdle"`
	}{plain: (*plain)(f)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	f.AckIdle = 0
	if v.AckIdle != "" {
		d, err := time.ParseDuration(v.AckIdle)
		if err != nil || d < 0 {
			return fmt.Errorf("ackIdle %q is not a duration like 90s", v.AckIdle)
		}
		f.AckIdle = d
	}
	return nil
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

// dial connects the relay to the node's port at addr (backendAddr's); the
// builtin sshd takes it over a socket pair (builtinSSHD.pipe).
func (n *Node) dial(ctx context.Context, port int, addr string) (net.Conn, error) {
	n.mu.Lock()
	d, builtin := n.sshd.(*builtinSSHD)
	n.mu.Unlock()
	if port == 22 && builtin {
		return d.pipe()
	}
	ctx, cancel := context.WithTimeout(ctx, backendDialTimeout)
	defer cancel()
	return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
}

// serveIAP upgrades to a relay websocket, then opens or resumes a tunnel.
func (s *Server) serveIAP(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(websocket.Subprotocols(r), relaySubprotocol) {
		http.Error(w, "websocket subprotocol "+relaySubprotocol+" required", http.StatusBadRequest)
		return
	}
	reconnect := strings.HasSuffix(r.URL.Path, "/reconnect")
	s.mu.Lock()
	h := relayHijacker{ResponseWriter: w, drop: s.faults.DropAfterBytes}
	if !reconnect {
		h.silent = s.faults.SilentAfterBytes
	}
	rate := s.faults.TunnelRate
	s.mu.Unlock()
	// IAP throttles with HTTP 429 ("IAP is throttling traffic",
	// cloud.google.com/iap/docs/faq), which for a tunnel can only come as
	// the answer to the websocket upgrade: no close code for it is known.
	if !s.relay.bucket.allow(float64(rate), time.Now()) {
		s.relay.throttled.Add(1)
		s.cfg.Logf("iap %s: over %d tunnels a second: 429", r.URL.Path, rate)
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
		return
	}
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
// (roles/iap.tunnelResourceAccessor grants it), and, under
// certificate-based access, whether it came with a client certificate
// from the device CA (tls.go).
func (s *Server) iapAuthorized(r *http.Request, project string) bool {
	g := s.bearerGrant(r)
	return g != nil && g.projects[project] && g.can("iap.tunnelInstances.accessViaIAP") && s.deviceAllowed(r)
}

func (s *Server) connectIAP(ws *websocket.Conn, r *http.Request) {
	q := r.URL.Query()
	project, zone, name := q.Get("project"), q.Get("zone"), q.Get("instance")
	if !s.iapAuthorized(r, project) {
		s.refuse(ws, r, closeNotAuthorized, "not authorized")
		return
	}
	n := s.NodeIn(zone, name)
	if project != s.cfg.Project || n == nil || (q.Has("interface") && q.Get("interface") != "nic0") {
		s.refuse(ws, r, closeLookupFailed, "Failed to lookup instance")
		return
	}
	port, err := strconv.Atoi(q.Get("port"))
	addr := ""
	if err == nil && port > 0 && port <= 65535 {
		addr = n.backendAddr(port)
	}
	var node net.Conn
	if addr != "" {
		node, err = n.dial(r.Context(), port, addr)
		if err != nil {
			s.cfg.Logf("iap: node %s port %d: %v", name, port, err)
		}
	}
	if node == nil {
		s.refuse(ws, r, closeFailedToConnect, "failed to connect to backend")
		return
	}
	s.mu.Lock()
	ackIdle := s.faults.AckIdle
	s.mu.Unlock()
	if ackIdle == 0 {
		ackIdle = s.cfg.AckIdle
	}
	ss := newRelaySession("emu-"+randomHex(16), fmt.Sprintf("%s:%d", name, port), node, ackIdle, s.cfg.Logf)
	if !s.relay.add(ss) {
		node.Close()
		s.refuse(ws, r, closeErrorUnknown, "relay shutting down")
		return
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, appendSIDFrame(nil, ss.sid)); err != nil {
		// The session waits for a reconnect that cannot come, as it
		// would on IAP.
		s.cfg.Logf("iap: tunnel %s: %v", ss.sid, err)
	}
	s.cfg.Logf("iap: tunnel %s to %s", ss.sid, ss.target)
	s.relay.run(ss, ws)
}

func (s *Server) reconnectIAP(ws *websocket.Conn, r *http.Request) {
	q := r.URL.Query()
	if !s.iapAuthorized(r, s.cfg.Project) {
		s.refuse(ws, r, closeNotAuthorized, "not authorized")
		return
	}
	ack, err := strconv.ParseUint(q.Get("ack"), 10, 64)
	ss := s.relay.get(q.Get("sid"))
	if err != nil || ss == nil {
		s.refuse(ws, r, closeSIDUnknown, "sid unknown")
		return
	}
	if !ss.claim(claimWait) {
		s.refuse(ws, r, closeSIDInUse, "sid in use")
		return
	}
	has, err := ss.rewind(ack)
	if err != nil {
		ss.release()
		s.cfg.Logf("iap: tunnel %s: %v", ss.sid, err)
		s.refuse(ws, r, closeFailedToRewind, "failed to rewind")
		return
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, appendReconnectAckFrame(nil, has)); err != nil {
		ss.release()
		ws.Close()
		return
	}
	select {
	case ss.next <- ws:
		s.cfg.Logf("iap: tunnel %s resumed at byte %d", ss.sid, ack)
	case <-ss.done:
		s.refuse(ws, r, closeSIDUnknown, "sid unknown")
	}
}

func (rl *relay) add(ss *relaySession) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.closed {
		return false
	}
	if rl.sessions == nil {
		rl.sessions = map[string]*relaySession{}
	}
	rl.sessions[ss.sid] = ss
	rl.wg.Add(1)
	return true
}

func (rl *relay) get(sid string) *relaySession {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.sessions[sid]
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
	sessions := make([]*relaySession, 0, len(rl.sessions))
	for _, ss := range rl.sessions {
		sessions = append(sessions, ss)
	}
	rl.mu.Unlock()
	for _, ss := range sessions {
		ss.end()
	}
	rl.wg.Wait()
}

// relayHijacker hands the websocket a connection whose frames the relay
// can send in bursts (wireConn), and which, with drop > 0, drops
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
	return &wireConn{Conn: c}, rw, nil
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

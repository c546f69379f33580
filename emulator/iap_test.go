//go:build unix

package emulator

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gkessh/gkessh/internal/testnet"
)

// These tests speak the relay protocol frame by frame, as gcloud would, so
// they pin the relay's behaviour independently of gkessh's own client; the
// frames they send and read are built and parsed here, not by the relay's
// codec (iapframe.go) nor by gkessh's.

// iapClient is a bare relay v4 client.
type iapClient struct {
	t  *testing.T
	ws *websocket.Conn
}

// iapDial opens a relay websocket at path with query q and token.
func iapDial(t *testing.T, hs *httptest.Server, path string, q url.Values, token string) (*iapClient, *http.Response, error) {
	t.Helper()
	h := http.Header{"Origin": {"bot:iap-tunneler"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	d := websocket.Dialer{Subprotocols: []string{"relay.tunnel.cloudproxy.app"}}
	u := "ws://" + hs.Listener.Addr().String() + path + "?" + q.Encode()
	ws, resp, err := d.Dial(u, h)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { ws.Close() })
	return &iapClient{t, ws}, resp, nil
}

func connectQuery(s *Server, n *Node, port int) url.Values {
	return url.Values{"project": {s.ProjectName()}, "zone": {n.Zone}, "instance": {n.Name},
		"interface": {"nic0"}, "port": {strconv.Itoa(port)}, "newWebsocket": {"True"}}
}

// openTunnel connects a client to port 8080 of s's first node, forwarded to
// a fresh listener, and returns it after CONNECT_SUCCESS_SID with the SID
// and the node's end of the connection.
func openTunnel(t *testing.T, s *Server, hs *httptest.Server) (c *iapClient, sid string, node net.Conn) {
	t.Helper()
	n := s.Node(s.Nodes()[0])
	ln := listen(t)
	n.ForwardPort(8080, ln.Addr().String())
	c, _, err := iapDial(t, hs, "/v4/connect", connectQuery(s, n, 8080), s.Token())
	if err != nil {
		t.Fatal(err)
	}
	sid = c.want(wireSID).SID
	node, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return c, sid, node
}

// wireFrame is a relay frame as a client reads it.
type wireFrame struct {
	Tag  uint16
	SID  string // CONNECT_SUCCESS_SID
	Ack  uint64 // RECONNECT_SUCCESS_ACK, ACK
	Data []byte // DATA
}

// Tags, as gcloud's iap_tunnel_websocket_utils.py numbers them.
const (
	wireSID          = 0x0001
	wireReconnectAck = 0x0002
	wireData         = 0x0004
	wireAck          = 0x0007
)

// parseWire decodes what the relay sent, insisting on exact lengths.
func parseWire(msg []byte) (wireFrame, error) {
	if len(msg) < 2 {
		return wireFrame{}, fmt.Errorf("message of %d bytes", len(msg))
	}
	f := wireFrame{Tag: binary.BigEndian.Uint16(msg)}
	body := msg[2:]
	switch f.Tag {
	case wireSID, wireData:
		if len(body) < 4 || uint32(len(body)-4) != binary.BigEndian.Uint32(body) {
			return f, fmt.Errorf("frame %#04x: length field does not match % x", f.Tag, msg)
		}
		if f.Tag == wireSID {
			f.SID = string(body[4:])
		} else {
			f.Data = body[4:]
		}
		if f.Tag == wireData && (len(f.Data) == 0 || len(f.Data) > 16384) {
			return f, fmt.Errorf("DATA frame of %d bytes", len(f.Data))
		}
	case wireReconnectAck, wireAck:
		if len(body) != 8 {
			return f, fmt.Errorf("frame %#04x of %d bytes", f.Tag, len(msg))
		}
		f.Ack = binary.BigEndian.Uint64(body)
	default:
		return f, fmt.Errorf("unknown frame % x", msg)
	}
	return f, nil
}

// dataMsg and ackMsg are a client's DATA and ACK messages.
func dataMsg(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0, wireData}, uint32(len(p))), p...)
}

func ackMsg(n uint64) []byte { return binary.BigEndian.AppendUint64([]byte{0, wireAck}, n) }

// next reads one relay frame.
func (c *iapClient) next() (wireFrame, error) {
	typ, msg, err := c.ws.ReadMessage()
	if err != nil {
		return wireFrame{}, err
	}
	if typ != websocket.BinaryMessage {
		c.t.Fatalf("relay sent message type %d", typ)
	}
	f, err := parseWire(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	return f, nil
}

// want reads one frame and checks its tag.
func (c *iapClient) want(tag uint16) wireFrame {
	c.t.Helper()
	f, err := c.next()
	if err != nil {
		c.t.Fatalf("want frame %#04x: %v", tag, err)
	}
	if f.Tag != tag {
		c.t.Fatalf("got frame %+v, want tag %#04x", f, tag)
	}
	return f
}

// wantClose reads until the relay closes and checks the code.
func (c *iapClient) wantClose(code int) {
	c.t.Helper()
	for {
		_, err := c.next()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != code {
				c.t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Text, code)
			}
			return
		}
		if err != nil {
			c.t.Fatalf("want close %d: %v", code, err)
		}
	}
}

// data reads DATA frames, skipping ACKs, until n payload bytes arrived.
func (c *iapClient) data(n int) []byte {
	c.t.Helper()
	var got []byte
	for len(got) < n {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("read data after %d of %d bytes: %v", len(got), n, err)
		}
		if f.Tag == wireData {
			got = append(got, f.Data...)
		}
	}
	return got
}

func (c *iapClient) send(msg []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// echoPort forwards a node port to an echo server.
func echoPort(t *testing.T, n *Node, port int) {
	t.Helper()
	n.ForwardPort(port, testnet.Serve(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	}))
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestIAPRefusals(t *testing.T) {
	s, hs := newTestServer(t, Config{Nodes: 2})
	s.AddToken("other", "other-project")
	n := s.Node(s.Nodes()[0])
	stopped := s.Node(s.Nodes()[1])
	echoPort(t, n, 7)
	echoPort(t, stopped, 7)
	gone := listen(t)
	gone.Close()
	n.ForwardPort(9, gone.Addr().String())
	if err := stopped.SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	n.ForwardPort(8, "")

	q := func(edit func(url.Values)) url.Values {
		v := connectQuery(s, n, 7)
		edit(v)
		return v
	}
	tests := []struct {
		name  string
		q     url.Values
		token string
		code  int
	}{
		{"no token", q(func(url.Values) {}), "", 4033},
		{"unknown token", q(func(url.Values) {}), "nope", 4033},
		{"no permission on project", q(func(url.Values) {}), "other", 4033},
		{"other project", q(func(v url.Values) { v.Set("project", "other-project") }), "other", 4047},
		{"unknown instance", q(func(v url.Values) { v.Set("instance", "nope") }), s.Token(), 4047},
		{"wrong zone", q(func(v url.Values) { v.Set("zone", "asia-east1-a") }), s.Token(), 4047},
		{"port not forwarded", q(func(v url.Values) { v.Set("port", "8") }), s.Token(), 4003},
		{"nothing listening", q(func(v url.Values) { v.Set("port", "9") }), s.Token(), 4003},
		{"bad port", q(func(v url.Values) { v.Set("port", "x") }), s.Token(), 4003},
		{"terminated", connectQuery(s, stopped, 7), s.Token(), 4003},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().Tunnels
			c, _, err := iapDial(t, hs, "/v4/connect", tt.q, tt.token)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.wantClose(tt.code)
			if got := s.Stats().Tunnels - before; got != 1 {
				t.Errorf("tunnels counter moved by %d, want 1", got)
			}
		})
	}
	t.Run("firewall closed", func(t *testing.T) {
		n.SetFirewall(false)
		defer n.SetFirewall(true)
		c, _, err := iapDial(t, hs, "/v4/connect", connectQuery(s, n, 7), s.Token())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.wantClose(4003)
	})
	t.Run("no subprotocol", func(t *testing.T) {
		u := "ws://" + hs.Listener.Addr().String() + "/v4/connect?" + connectQuery(s, n, 7).Encode()
		_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + s.Token()}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %v, %v; want HTTP 400", resp, err)
		}
	})
}

// TestIAPRelay checks data both ways, ACKs, and that a normal close from
// the client closes the node connection.
func TestIAPRelay(t *testing.T) {
	s, hs := newTestServer(t, Config{Nodes: 1})
	c, sid, b := openTunnel(t, s, hs)
	if sid == "" {
		t.Fatal("empty SID")
	}

	up := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes: several frames, past the ACK threshold
	for p := up; len(p) > 0; {
		k := min(len(p), 16384)
		c.send(dataMsg(p[:k]))
		p = p[k:]
	}
	got := make([]byte, len(up))
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("node read %d bytes, %v; want what was sent", len(got), err)
	}
	if _, err := b.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	var down []byte
	for acked < uint64(len(up)) || len(down) < 4 {
		f, err := c.next()
		if err != nil {
			t.Fatalf("acked %d, received %q: %v", acked, down, err)
		}
		switch f.Tag {
		case wireAck:
			if f.Ack < acked || f.Ack > uint64(len(up)) {
				t.Fatalf("ack %d after %d, of %d sent", f.Ack, acked, len(up))
			}
			acked = f.Ack
		case wireData:
			down = append(down, f.Data...)
		}
	}
	if string(down) != "pong" {
		t.Fatalf("client got %q, want pong", down)
	}

	if err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("node read %d, %v after the client closed; want EOF", k, err)
	}
}

// TestIAPNodeCloses checks that the relay sends the node's last bytes, then
// closes with 4010.
func TestIAPNodeCloses(t *testing.T) {
	s, hs := newTestServer(t, Config{Nodes: 1})
	c, _, b := openTunnel(t, s, hs)
	if _, err := b.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if got := c.data(3); string(got) != "bye" {
		t.Fatalf("got %q", got)
	}
	start := time.Now()
	c.send(ackMsg(3))
	c.wantClose(4010)
	// Under closeLinger (5 s), which a relay that waited it out would take,
	// with room for a loaded machine.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("relay took %v to close once everything was acknowledged", d)
	}
}

// TestIAPReconnect resumes a session on new websockets: the relay must
// report what it holds, replay what the client did not get, and refuse bad
// resumes with IAP's codes.
func TestIAPReconnect(t *testing.T) {
	s, hs := newTestServer(t, Config{Nodes: 1})
	n := s.Node(s.Nodes()[0])
	echoPort(t, n, 7)
	reconnect := func(sid string, ack uint64) (*iapClient, error) {
		c, _, err := iapDial(t, hs, "/v4/reconnect", url.Values{"sid": {sid}, "ack": {strconv.FormatUint(ack, 10)},
			"zone": {n.Zone}, "newWebsocket": {"True"}}, s.Token())
		return c, err
	}

	c, _, err := iapDial(t, hs, "/v4/connect", connectQuery(s, n, 7), s.Token())
	if err != nil {
		t.Fatal(err)
	}
	sid := c.want(wireSID).SID
	c.send(dataMsg([]byte("0123456789")))
	if got := c.data(10); string(got) != "0123456789" {
		t.Fatalf("echo %q", got)
	}
	// Drop the websocket without acknowledging anything.
	c.ws.Close()

	t.Run("unknown sid", func(t *testing.T) {
		c, err := reconnect("nope", 0)
		if err != nil {
			t.Fatal(err)
		}
		c.wantClose(4001)
	})
	t.Run("ack beyond what was sent", func(t *testing.T) {
		c, err := reconnect(sid, 11)
		if err != nil {
			t.Fatal(err)
		}
		c.wantClose(4074)
	})

	// Claiming only 4 bytes, the relay replays the other 6.
	c2, err := reconnect(sid, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.want(wireReconnectAck).Ack; got != 10 {
		t.Fatalf("relay holds %d bytes of the client's stream, want 10", got)
	}
	if got := c2.data(6); string(got) != "456789" {
		t.Fatalf("replay %q, want 456789", got)
	}
	c2.send(dataMsg([]byte("!")))
	if got := c2.data(1); string(got) != "!" {
		t.Fatalf("echo %q", got)
	}

	t.Run("sid in use", func(t *testing.T) {
		c, err := reconnect(sid, 11)
		if err != nil {
			t.Fatal(err)
		}
		c.wantClose(4002)
	})
}

// TestIAPDropAfterBytes checks the fault: the websocket is cut without a
// close frame once enough bytes crossed it.
func TestIAPDropAfterBytes(t *testing.T) {
	s, hs := newTestServer(t, Config{Nodes: 1})
	n := s.Node(s.Nodes()[0])
	echoPort(t, n, 7)
	s.SetFaults(Faults{DropAfterBytes: 4096})
	c, _, err := iapDial(t, hs, "/v4/connect", connectQuery(s, n, 7), s.Token())
	if err != nil {
		t.Fatal(err)
	}
	c.want(wireSID)
	// The drop may land while this write is still going out, so a write
	// error is as good as the read error below: either way no close frame.
	c.ws.WriteMessage(websocket.BinaryMessage, dataMsg(make([]byte, 8192)))
	for {
		_, err := c.next()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("got close frame %d, want the connection dropped", ce.Code)
		}
		break
	}
}

// TestIAPSilentAfterBytes checks the fault: past the limit the relay
// sends nothing more (no ACK, no echo) on a websocket it keeps open; once
// the client closes that websocket, a reconnect takes the session over,
// works, and gets the echo.
func TestIAPSilentAfterBytes(t *testing.T) {
	s, hs := newTestServer(t, Config{Nodes: 1})
	n := s.Node(s.Nodes()[0])
	echoPort(t, n, 7)
	s.SetFaults(Faults{SilentAfterBytes: 1024})
	c, _, err := iapDial(t, hs, "/v4/connect", connectQuery(s, n, 7), s.Token())
	if err != nil {
		t.Fatal(err)
	}
	sid := c.want(wireSID).SID
	payload := bytes.Repeat([]byte("silence!"), 512)
	c.send(dataMsg(payload))
	// Only a relay that is not silent can fail this, however slow the machine.
	c.ws.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var ne net.Error
	if f, err := c.next(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the relay answered after going silent: %+v, %v", f, err)
	}
	c.ws.Close()
	for try := 0; ; try++ {
		r, _, err := iapDial(t, hs, "/v4/reconnect", url.Values{"sid": {sid}, "ack": {"0"}, "zone": {n.Zone}, "newWebsocket": {"True"}}, s.Token())
		if err != nil {
			t.Fatal(err)
		}
		f, err := r.next()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == 4002 && try < 20 {
			continue // the relay has not yet seen the old websocket closed
		}
		if err != nil || f.Tag != wireReconnectAck || f.Ack > uint64(len(payload)) {
			t.Fatalf("reconnect: %+v, %v", f, err)
		}
		if f.Ack < uint64(len(payload)) { // an empty DATA frame gets 4013
			r.send(dataMsg(payload[f.Ack:]))
		}
		if got := r.data(len(payload)); !bytes.Equal(got, payload) {
			t.Fatalf("echo after the reconnect: %d bytes, not the payload", len(got))
		}
		return
	}
}

// TestIAPCloseEndsTunnels checks that closing the emulator ends live
// tunnels and their node connections.
func TestIAPCloseEndsTunnels(t *testing.T) {
	s, err := New(Config{Nodes: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	_, _, b := openTunnel(t, s, hs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 1)); err != io.EOF && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("node connection still open after Close: %v", err)
	}
}

// TestIAPProtocolViolations: a client that breaks the protocol gets the
// tunnel closed with IAP's code for it, not silence or a guess: the relay
// is there to catch such a client. (Empty and oversized DATA frames were
// accepted before the relay had a codec of its own.)
func TestIAPProtocolViolations(t *testing.T) {
	s, hs := newTestServer(t, Config{Nodes: 1})
	tests := []struct {
		name string
		typ  int
		msg  []byte
		code int
	}{
		{"empty DATA", websocket.BinaryMessage, dataMsg(nil), 4013},
		{"DATA over 16384 bytes", websocket.BinaryMessage, dataMsg(make([]byte, 16385)), 4013},
		{"bytes after a frame", websocket.BinaryMessage, append(dataMsg([]byte("x")), 0), 4013},
		{"text message", websocket.TextMessage, dataMsg([]byte("x")), 4007},
		{"ACK of bytes never sent", websocket.BinaryMessage, ackMsg(1), 4005},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, node := openTunnel(t, s, hs)
			if err := c.ws.WriteMessage(tt.typ, tt.msg); err != nil {
				t.Fatal(err)
			}
			c.wantClose(tt.code)
			node.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, node); err != nil {
				t.Errorf("node connection: %v, want it closed", err)
			}
		})
	}
}

// TestIAPLazyAcks: with Faults.AckIdle (or Config.AckIdle) the relay
// acknowledges a client's bytes only once 32 KiB are owed or after that
// long without DATA; by default it acknowledges a few bytes at once.
func TestIAPLazyAcks(t *testing.T) {
	// open returns a tunnel, its node end drained, and the frames the
	// relay sends, read in the background (gorilla's reads cannot time
	// out and go on).
	open := func(t *testing.T, cfg Config, f Faults) (*iapClient, <-chan wireFrame) {
		s, hs := newTestServer(t, cfg)
		s.SetFaults(f)
		c, _, node := openTunnel(t, s, hs)
		go io.Copy(io.Discard, node)
		frames := make(chan wireFrame, 16)
		go func() {
			defer close(frames)
			for {
				typ, msg, err := c.ws.ReadMessage()
				if err != nil || typ != websocket.BinaryMessage {
					return
				}
				f, err := parseWire(msg)
				if err != nil {
					t.Error(err)
					return
				}
				frames <- f
			}
		}()
		return c, frames
	}
	wantAck := func(t *testing.T, frames <-chan wireFrame, n uint64) {
		t.Helper()
		select {
		case f := <-frames:
			if f.Tag != wireAck || f.Ack != n {
				t.Fatalf("got %+v, want ACK(%d)", f, n)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no ACK(%d) in 10s", n)
		}
	}
	// noFrame checks that nothing comes for a while: only a relay that
	// does answer can fail it, however loaded the machine.
	noFrame := func(t *testing.T, frames <-chan wireFrame) {
		t.Helper()
		select {
		case f := <-frames:
			t.Fatalf("got %+v, want nothing yet", f)
		case <-time.After(300 * time.Millisecond):
		}
	}
	t.Run("default", func(t *testing.T) {
		c, frames := open(t, Config{Nodes: 1}, Faults{})
		c.send(dataMsg(make([]byte, 100)))
		wantAck(t, frames, 100)
	})
	t.Run("idle", func(t *testing.T) {
		c, frames := open(t, Config{Nodes: 1, AckIdle: 700 * time.Millisecond}, Faults{})
		start := time.Now()
		c.send(dataMsg(make([]byte, 100)))
		wantAck(t, frames, 100)
		if waited := time.Since(start); waited < 700*time.Millisecond {
			t.Errorf("100 bytes acknowledged after %v, want after the 700ms idle", waited)
		}
	})
	t.Run("32 KiB", func(t *testing.T) {
		c, frames := open(t, Config{Nodes: 1}, Faults{AckIdle: time.Hour})
		c.send(dataMsg(make([]byte, 16384)))
		c.send(dataMsg(make([]byte, 16383)))
		noFrame(t, frames)
		c.send(dataMsg([]byte{1}))
		wantAck(t, frames, 32<<10)
	})
}

// TestFaultsAckIdleJSON: the control API takes and gives ackIdle as a
// duration string, and refuses one that is not.
func TestFaultsAckIdleJSON(t *testing.T) {
	s, hs := newTestServer(t, Config{})
	var f map[string]any
	if code := ctl(t, hs, "POST", "/control/faults", map[string]any{"ackIdle": "90s", "dropAfterBytes": 5}, &f); code != 200 || f["ackIdle"] != "1m30s" {
		t.Fatalf("set: %d %v", code, f)
	}
	if got := s.Faults(); got.AckIdle != 90*time.Second || got.DropAfterBytes != 5 {
		t.Errorf("faults %+v", got)
	}
	for _, bad := range []any{"soon", "-1s", 90} {
		if code := ctl(t, hs, "POST", "/control/faults", map[string]any{"ackIdle": bad}, nil); code != 400 {
			t.Errorf("ackIdle %v: HTTP %d, want 400", bad, code)
		}
	}
}

// TestIAPTunnelRate: past Faults.TunnelRate new websockets a second, the
// relay answers the upgrade with HTTP 429 (IAP's throttling status) and
// counts it; a second later it takes tunnels again, and a resume counts
// as a websocket too.
func TestIAPTunnelRate(t *testing.T) {
	s, hs := newTestServer(t, Config{Nodes: 1})
	n := s.Node(s.Nodes()[0])
	echoPort(t, n, 7)
	s.SetFaults(Faults{TunnelRate: 1})
	dial := func(path string, q url.Values) (*iapClient, int) {
		c, resp, err := iapDial(t, hs, path, q, s.Token())
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		return c, http.StatusSwitchingProtocols
	}
	const tries = 6
	var ok, throttled int
	var first *iapClient
	start := time.Now()
	for range tries {
		switch c, code := dial("/v4/connect", connectQuery(s, n, 7)); code {
		case http.StatusSwitchingProtocols:
			ok++
			if first == nil {
				first = c
			}
		case http.StatusTooManyRequests:
			throttled++
		default:
			t.Fatalf("HTTP %d", code)
		}
	}
	// At 1 a second, with a burst of 1, the relay takes at most one
	// tunnel and one more for each second the dials took: on any machine
	// that is under 5 s for the 6, some are refused.
	if took := time.Since(start); ok < 1 || ok > 1+int(took.Seconds()) {
		t.Errorf("%d tunnels taken, %d refused with 429 in %v at 1 a second", ok, throttled, took)
	}
	if got := s.Stats().TunnelsThrottled; got != int64(throttled) {
		t.Errorf("tunnelsThrottled %d, want %d", got, throttled)
	}
	sid := first.want(wireSID).SID
	first.ws.Close()
	time.Sleep(1100 * time.Millisecond) // a token again
	for try := 0; ; try++ {
		c, code := dial("/v4/reconnect", url.Values{"sid": {sid}, "ack": {"0"}, "zone": {n.Zone}})
		if code == http.StatusTooManyRequests && try < 5 {
			time.Sleep(time.Second)
			continue
		}
		if code != http.StatusSwitchingProtocols {
			t.Fatalf("reconnect: HTTP %d", code)
		}
		if f, err := c.next(); err != nil || f.Tag != wireReconnectAck {
			t.Fatalf("reconnect: %+v, %v", f, err)
		}
		break
	}
}

package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/internal/iap"
)

// fakeRelay runs script on every websocket, connect or reconnect, so tests
// can make a relay misbehave exactly as they need.
type fakeRelay struct {
	dialer *Dialer
	tokens atomic.Int32 // tokens handed out
}

func newFakeRelay(t *testing.T, script func(ws *websocket.Conn, r *http.Request)) *fakeRelay {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{iap.Subprotocol}, CheckOrigin: func(*http.Request) bool { return true }}
	var (
		mu     sync.Mutex
		closed bool
		wg     sync.WaitGroup // handlers outlive hs.Close once hijacked
	)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if closed {
			mu.Unlock()
			return
		}
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer ws.Close()
		script(ws, r)
	}))
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		hs.Close()
		wg.Wait()
	})
	f := &fakeRelay{}
	f.dialer = &Dialer{
		Endpoint: "ws://" + hs.Listener.Addr().String(),
		TokenSource: tokenFunc(func() (*oauth2.Token, error) {
			f.tokens.Add(1)
			return &oauth2.Token{AccessToken: "t"}, nil
		}),
		Logf: t.Logf,
	}
	return f
}

// dial opens a tunnel through the fake relay, with a 5 s read deadline; it
// closes with the test.
func (f *fakeRelay) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := f.dialer.DialContext(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }

var target = Target{Project: "p", Zone: "z", Instance: "i", Port: 22}

func send(ws *websocket.Conn, msg []byte) { ws.WriteMessage(websocket.BinaryMessage, msg) }

// drain reads until the client goes away, so the relay's writes are read.
func drain(ws *websocket.Conn) {
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}

// TestHostileHandshake checks that a relay breaking the protocol before the
// tunnel opens makes DialContext fail cleanly.
func TestHostileHandshake(t *testing.T) {
	tests := []struct {
		name string
		msg  func(ws *websocket.Conn)
		want string
	}{
		{"data before connect-success", func(ws *websocket.Conn) { send(ws, iap.AppendData(nil, []byte("x"))) }, "want 0x0001"},
		{"ack before connect-success", func(ws *websocket.Conn) { send(ws, iap.AppendAck(nil, 1)) }, "want 0x0001"},
		{"reconnect-success for connect", func(ws *websocket.Conn) { send(ws, iap.AppendReconnectSuccess(nil, 0)) }, "want 0x0001"},
		{"text message", func(ws *websocket.Conn) { ws.WriteMessage(websocket.TextMessage, []byte("hi")) }, "want binary"},
		{"oversized message", func(ws *websocket.Conn) { send(ws, make([]byte, 1<<20)) }, "relay message over"},
		// gcloud reports the close code of a LONG_CLOSE that comes first.
		{"long close 4033 before connect-success", func(ws *websocket.Conn) {
			send(ws, iap.AppendLongClose(nil, CodeNotAuthorized, "not authorized"))
		}, "4033 \"not authorized\": you may not tunnel to this instance: grant roles/iap.tunnelResourceAccessor"},
		{"unknown frame then long close 4003", func(ws *websocket.Conn) {
			send(ws, []byte{0, 9, 1, 2})
			send(ws, iap.AppendLongClose(nil, CodeFailedToConnectToBackend, "failed to connect to backend"))
		}, "4003 \"failed to connect to backend\": IAP could not reach port 22: check that a firewall rule allows 35.235.240.0/20"},
		{"truncated frame", func(ws *websocket.Conn) { send(ws, []byte{0, 1, 0, 0, 0, 9, 'x'}) }, "truncated"},
		{"refused", func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(CodeNotAuthorized, "no"))
		}, "4033"},
		{"retryable close", func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(CodeErrorUnknown, "oops"))
		}, "4000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRelay(t, func(ws *websocket.Conn, _ *http.Request) {
				tt.msg(ws)
				drain(ws)
			})
			c, err := f.dialer.DialContext(context.Background(), target)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			// Wrapped once per boundary: one package prefix.
			if n := strings.Count(err.Error(), "iap:"); n != 1 {
				t.Fatalf("got %v: %d times \"iap:\", want once", err, n)
			}
		})
	}
}

// TestHostileStream checks what a client makes of a relay misbehaving
// mid-stream: tolerable oddities are ignored, violations end the tunnel
// with a protocol error and no reconnect.
func TestHostileStream(t *testing.T) {
	sid := iap.AppendConnectSuccess(nil, "sid")
	tests := []struct {
		name  string
		msgs  [][]byte
		read  string // what Read returns before the error
		err   string // "" for io.EOF
		dials int32
	}{
		{"unknown tags and long close are ignored",
			[][]byte{{0, 9, 1, 2, 3}, iap.AppendLongClose(nil, 4000, "x"), {0, 3}, iap.AppendData(nil, []byte("hi"))}, "hi", "", 1},
		{"trailing bytes are ignored", [][]byte{append(iap.AppendData(nil, []byte("hi")), 7, 7)}, "hi", "", 1},
		{"ack beyond what was sent", [][]byte{iap.AppendData(nil, []byte("hi")), iap.AppendAck(nil, 100)}, "hi", "ack of 100 bytes, only 0 sent", 1},
		// Tolerated as gcloud tolerates them: empty and over-16-KiB payloads.
		{"empty data is skipped", [][]byte{{0, 4, 0, 0, 0, 0}, iap.AppendData(nil, []byte("hi"))}, "hi", "", 1},
		{"data over 16 KiB is read", [][]byte{iap.AppendData(nil, []byte(strings.Repeat("x", 40000)))}, strings.Repeat("x", 40000), "", 1},
		{"data length over the bound", [][]byte{append(iap.AppendDataHeader(nil, iap.MaxRecvDataLen+1), make([]byte, iap.MaxRecvDataLen+1)...)}, "", "over limit", 1},
		{"message over the bound, no resume loop", [][]byte{iap.AppendData(nil, make([]byte, 1<<20))}, "", "relay message over", 1},
		{"second connect-success", [][]byte{sid}, "", "in mid-stream", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dials atomic.Int32
			f := newFakeRelay(t, func(ws *websocket.Conn, _ *http.Request) {
				dials.Add(1)
				send(ws, sid)
				for _, m := range tt.msgs {
					send(ws, m)
				}
				ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(CodeDestinationReadFailed, ""))
				drain(ws)
			})
			c := f.dial(t)
			got, err := io.ReadAll(c)
			if string(got) != tt.read {
				t.Errorf("read %q, want %q", got, tt.read)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("got %v, want EOF", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("got %v, want an error saying %q", err, tt.err)
			}
			var pe *iap.ProtocolError
			if tt.err != "" && !errors.As(err, &pe) {
				t.Errorf("got %T, want a *ProtocolError", err)
			}
			if n := dials.Load(); n != tt.dials {
				t.Errorf("%d websockets, want %d", n, tt.dials)
			}
		})
	}
}

// TestHandshakeSkipsUnknownFrames: frames of unknown tags before
// CONNECT_SUCCESS_SID are skipped, as the protocol asks.
func TestHandshakeSkipsUnknownFrames(t *testing.T) {
	f := newFakeRelay(t, func(ws *websocket.Conn, _ *http.Request) {
		send(ws, []byte{0, 9, 1, 2, 3})
		send(ws, []byte{0, 3})
		send(ws, iap.AppendConnectSuccess(nil, "sid"))
		send(ws, iap.AppendData(nil, []byte("hi")))
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(CodeDestinationReadFailed, ""))
		drain(ws)
	})
	got, err := io.ReadAll(f.dial(t))
	if string(got) != "hi" || err != nil {
		t.Fatalf("read %q, %v; want hi, EOF", got, err)
	}
}

// TestNoUnsolicitedPings: the client sends the relay no websocket pings
// (gcloud sends none; keepalive is ssh's), and answers the relay's.
func TestNoUnsolicitedPings(t *testing.T) {
	pong := make(chan string, 1)
	var pings atomic.Int32
	f := newFakeRelay(t, func(ws *websocket.Conn, _ *http.Request) {
		ws.SetPingHandler(func(string) error { pings.Add(1); return nil })
		ws.SetPongHandler(func(s string) error { pong <- s; return nil })
		send(ws, iap.AppendConnectSuccess(nil, "sid"))
		ws.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(5*time.Second))
		drain(ws)
	})
	c := f.dial(t)
	select {
	case s := <-pong:
		if s != "are you there" {
			t.Errorf("pong %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the relay's ping got no pong")
	}
	c.Close()
	if n := pings.Load(); n != 0 {
		t.Errorf("client sent %d pings", n)
	}
}

// TestReconnectPolicy drives the client's reconnects: retryable breaks
// resume with a fresh token and the right ack, fatal answers end the tunnel
// at once.
func TestReconnectPolicy(t *testing.T) {
	t.Run("resume after 4004 and a dropped connection", func(t *testing.T) {
		var n atomic.Int32
		f := newFakeRelay(t, func(ws *websocket.Conn, r *http.Request) {
			switch n.Add(1) {
			case 1:
				send(ws, iap.AppendConnectSuccess(nil, "s1"))
				send(ws, iap.AppendData(nil, []byte("abc")))
				ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(CodeReauthenticationRequired, "token expired"))
			case 2:
				if q := r.URL.Query(); r.URL.Path != "/v4/reconnect" || q.Get("sid") != "s1" || q.Get("ack") != "3" {
					t.Errorf("reconnect %s, want sid s1 and ack 3", r.URL)
				}
				return // dropped without a word
			default:
				send(ws, iap.AppendReconnectSuccess(nil, 0))
				send(ws, iap.AppendData(nil, []byte("def")))
				ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			}
			drain(ws)
		})
		c := f.dial(t)
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "abcdef" {
			t.Fatalf("read %q, %v; want abcdef and EOF", got, err)
		}
		if got := f.tokens.Load(); got != 3 {
			t.Errorf("%d tokens asked for, want one per websocket (3)", got)
		}
	})
	t.Run("fatal code on reconnect", func(t *testing.T) {
		var n atomic.Int32
		f := newFakeRelay(t, func(ws *websocket.Conn, _ *http.Request) {
			if n.Add(1) == 1 {
				send(ws, iap.AppendConnectSuccess(nil, "s1"))
				return
			}
			ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(CodeSIDUnknown, "sid unknown"))
			drain(ws)
		})
		c := f.dial(t)
		_, err := c.Read(make([]byte, 1))
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != CodeSIDUnknown {
			t.Fatalf("got %v, want a 4001 CloseError", err)
		}
		if got := n.Load(); got != 2 {
			t.Errorf("%d websockets, want 2", got)
		}
	})
	t.Run("relay that cannot rewind", func(t *testing.T) {
		var n atomic.Int32
		f := newFakeRelay(t, func(ws *websocket.Conn, _ *http.Request) {
			if n.Add(1) == 1 {
				send(ws, iap.AppendConnectSuccess(nil, "s1"))
				ws.ReadMessage() // the client's DATA, then drop
				return
			}
			send(ws, iap.AppendReconnectSuccess(nil, 1000)) // more than was ever sent
			drain(ws)
		})
		c, err := f.dialer.DialContext(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		var re *iap.RewindError
		if !errors.As(err, &re) {
			t.Fatalf("got %v, want a RewindError", err)
		}
	})
}

// TestReceiveBufferBounded checks that a relay flooding a client that does
// not read is pushed back on: its writes stall once the client's receive
// buffer and the sockets between are full, rather than the client taking
// everything into memory.
func TestReceiveBufferBounded(t *testing.T) {
	const flood = 256 << 20
	var (
		sent  atomic.Int64
		calls atomic.Int32
	)
	stalled := make(chan error, 1)
	f := newFakeRelay(t, func(ws *websocket.Conn, _ *http.Request) {
		if calls.Add(1) > 1 {
			return // the client's reconnect after the stall
		}
		send(ws, iap.AppendConnectSuccess(nil, "s1"))
		chunk := iap.AppendData(nil, make([]byte, iap.MaxDataLen))
		for sent.Load() < flood {
			// A client that reads keeps each write well under a second,
			// however loaded the machine; one that pushes back stops it.
			ws.SetWriteDeadline(time.Now().Add(time.Second))
			if err := ws.WriteMessage(websocket.BinaryMessage, chunk); err != nil {
				stalled <- err
				return
			}
			sent.Add(iap.MaxDataLen)
		}
		stalled <- nil
	})
	c := f.dial(t)
	var err error
	select {
	case err = <-stalled:
	case <-time.After(time.Minute):
		t.Fatal("the relay's writes neither stalled nor finished")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("relay sent %d bytes to a client that reads nothing, then: %v; want its writes to stall", sent.Load(), err)
	}
	// Loopback socket buffers take a few MiB; the rest must have waited.
	if n := sent.Load(); n > 64<<20 {
		t.Fatalf("relay got %d bytes into a client that reads nothing", n)
	}
	if _, err := c.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
}

// TestSilentRelay: a relay that goes silent after CONNECT_SUCCESS (the
// socket stays open, nothing is acknowledged, no close) is found dead by
// the bytes it leaves unacknowledged, without websocket pings, and the
// tunnel resumes on a new websocket from the last ACK.
func TestSilentRelay(t *testing.T) {
	var n atomic.Int32
	f := newFakeRelay(t, func(ws *websocket.Conn, r *http.Request) {
		if n.Add(1) == 1 {
			send(ws, iap.AppendConnectSuccess(nil, "s1"))
			drain(ws) // reads, never answers: a dead path as the client sees it
			return
		}
		if q := r.URL.Query(); r.URL.Path != "/v4/reconnect" || q.Get("ack") != "0" {
			t.Errorf("reconnect %s, want ack 0", r.URL)
		}
		send(ws, iap.AppendReconnectSuccess(nil, 0)) // it got nothing: resend all
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		fr, err := iap.ParseFrame(msg)
		if err != nil || fr.Tag != iap.TagData {
			t.Errorf("first frame after reconnect: %+v, %v", fr, err)
			return
		}
		send(ws, iap.AppendAck(nil, uint64(len(fr.Data))))
		send(ws, iap.AppendData(nil, fr.Data)) // echo
		drain(ws)
	})
	// 1 s, not less: the second websocket's answer must come within it,
	// which a loaded machine can take a few hundred milliseconds to give.
	f.dialer.AckTimeout = time.Second
	c := f.dial(t)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v: the silent relay was not left for a new websocket", got, err)
	}
	if n.Load() != 2 {
		t.Errorf("%d websockets, want 2", n.Load())
	}
}

// TestStuckRelay: a relay that takes every reconnect and then stays silent
// (nothing acknowledged, nothing sent) ends the tunnel after maxReconnects
// reconnects with a *StuckError; it used to keep the tunnel reconnecting
// for ever. A relay that moves the stream on
// each websocket, however briefly, is followed as long as it does.
func TestStuckRelay(t *testing.T) {
	t.Run("silent on every websocket", func(t *testing.T) {
		var n atomic.Int32
		f := newFakeRelay(t, func(ws *websocket.Conn, r *http.Request) {
			if n.Add(1) == 1 {
				send(ws, iap.AppendConnectSuccess(nil, "s1"))
			} else {
				send(ws, iap.AppendReconnectSuccess(nil, 0))
			}
			drain(ws)
		})
		f.dialer.AckTimeout = 100 * time.Millisecond
		c, err := f.dialer.DialContext(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		_, err = c.Read(make([]byte, 1))
		var se *StuckError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "the relay took 8 reconnects in a row but sent and acknowledged nothing") {
			t.Fatalf("read: %v, want a *StuckError", err)
		}
		if got := n.Load(); got != 1+maxReconnects {
			t.Errorf("%d websockets, want %d", got, 1+maxReconnects)
		}
	})
	t.Run("a little progress on each", func(t *testing.T) {
		const websockets = 2 * maxReconnects
		var n atomic.Int32
		f := newFakeRelay(t, func(ws *websocket.Conn, r *http.Request) {
			i := n.Add(1)
			if i == 1 {
				send(ws, iap.AppendConnectSuccess(nil, "s1"))
			} else {
				send(ws, iap.AppendReconnectSuccess(nil, 0))
			}
			send(ws, iap.AppendData(nil, []byte("x")))
			if i == websockets {
				ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				drain(ws)
				return
			}
			// Then gone: the client's resent bytes read (closing on them
			// unread would reset the connection), the socket dropped. (A
			// relay that answers but never acknowledges is left only after
			// 8 ack timeouts: 16 of them took 13 s.)
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			ws.ReadMessage()
			ws.NetConn().Close()
		})
		f.dialer.AckTimeout = 100 * time.Millisecond
		c, err := f.dialer.DialContext(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != strings.Repeat("x", websockets) {
			t.Fatalf("read %q, %v; want %d bytes and EOF", got, err, websockets)
		}
	})
}

// TestLazyRelayKeepsWebsocket: a relay that echoes each write at once but
// acknowledges nothing (as one with a long ACK idle would, for a few
// keystrokes) is alive: the tunnel keeps its websocket past the ack
// timeout, though not past 8 of them (TestRelayNeverAcks). The first rule,
// ACK progress alone, resumed after each write.
func TestLazyRelayKeepsWebsocket(t *testing.T) {
	var n atomic.Int32
	done := make(chan struct{}) // the checks are over: acknowledge, so Close need not linger
	f := newFakeRelay(t, func(ws *websocket.Conn, r *http.Request) {
		n.Add(1)
		send(ws, iap.AppendConnectSuccess(nil, "s1"))
		var mu sync.Mutex
		var got uint64
		go func() {
			<-done
			mu.Lock()
			send(ws, iap.AppendAck(nil, got))
			mu.Unlock()
		}()
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if fr, err := iap.ParseFrame(msg); err == nil && fr.Tag == iap.TagData {
				mu.Lock()
				got += uint64(len(fr.Data))
				send(ws, iap.AppendData(nil, fr.Data)) // echo, never ACK
				mu.Unlock()
			}
		}
	})
	// 1 s, not less: an echo later than the timeout is silence, and a
	// loaded machine can take a few hundred milliseconds to echo.
	const ackTimeout = time.Second
	f.dialer.AckTimeout = ackTimeout
	c := f.dial(t)
	defer close(done)
	for i := range 3 {
		key := []byte{'a' + byte(i)}
		if _, err := c.Write(key); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1)
		if _, err := io.ReadFull(c, got); err != nil || got[0] != key[0] {
			t.Fatalf("echo %q, %v", got, err)
		}
		time.Sleep(ackTimeout + ackTimeout/4) // past the ack timeout, nothing acknowledged
	}
	if n.Load() != 1 {
		t.Errorf("%d websockets, want 1: a relay that answers is not silent", n.Load())
	}
}

// TestRelayNeverAcks: a relay that echoes every write but never
// acknowledges one is left for a new websocket after 8 ack timeouts, not
// kept until the send window fills and writes block for good.
func TestRelayNeverAcks(t *testing.T) {
	var n atomic.Int32
	var got atomic.Uint64 // payload bytes the relay has, over all websockets
	f := newFakeRelay(t, func(ws *websocket.Conn, r *http.Request) {
		if n.Add(1) == 1 {
			send(ws, iap.AppendConnectSuccess(nil, "s1"))
		} else {
			send(ws, iap.AppendReconnectSuccess(nil, got.Load()))
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if fr, err := iap.ParseFrame(msg); err == nil && fr.Tag == iap.TagData {
				got.Add(uint64(len(fr.Data)))
				send(ws, iap.AppendData(nil, fr.Data)) // echo, never ACK
			}
		}
	})
	f.dialer.AckTimeout = 50 * time.Millisecond
	c := f.dial(t)
	for deadline := time.Now().Add(10 * time.Second); n.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("still on websocket %d after 10s of writes nothing acknowledged", n.Load())
		}
		if _, err := c.Write([]byte("k")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
